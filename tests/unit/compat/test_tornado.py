"""Guards on the Tornado private attributes ``tornado_ingest/tornado_compat.py`` relies on.

Each test fails with a message naming the Tornado version when an upgrade takes
away what the compat module touches; then the compat module needs a new way.
"""

from __future__ import annotations

import pytest
import tornado
import tornado.web
from tornado.httpclient import HTTPRequest

from tornado_ingest.tornado_compat import answer_finished, close_after_answer

SEEN = {}


class _CloseAfterAnswer(tornado.web.RequestHandler):
    def get(self):
        SEEN["has the attribute"] = hasattr(self.request.connection, "_disconnect_on_finish")
        SEEN["finished before"] = answer_finished(self)
        close_after_answer(self.request)
        self.finish("ok")
        SEEN["finished after"] = answer_finished(self)


@pytest.fixture
def app():
    return tornado.web.Application([(r"/", _CloseAfterAnswer)])


@pytest.mark.gen_test
async def test_close_after_answer_still_closes(http_client, base_url):
    response = await http_client.fetch(HTTPRequest(base_url + "/", headers={"Connection": "keep-alive"}))
    assert SEEN["has the attribute"], (
        "Tornado %s: HTTP1Connection has no _disconnect_on_finish; tornado_compat.close_after_answer "
        "needs another way to answer with Connection: close" % tornado.version
    )
    assert response.headers.get("Connection") == "close", (
        "Tornado %s no longer honours HTTP1Connection._disconnect_on_finish" % tornado.version
    )


@pytest.mark.gen_test
async def test_answer_finished_follows_finish(http_client, base_url):
    await http_client.fetch(base_url + "/")
    assert (SEEN["finished before"], SEEN["finished after"]) == (False, True), (
        "Tornado %s: RequestHandler._finished no longer tells whether finish() ran" % tornado.version
    )
