"""moto server, answering one request at a time.

moto answers each request on its own thread, and its DynamoDB backend takes no
lock: a conditional write can interleave with another request's between its
condition check and its write. DynamoDB applies each conditional write
atomically, and the identity tests race conditional writes on purpose, so here
every DynamoDB request holds one lock (other services, such as SQS long polls,
do not wait on it). The arguments are moto_server's.
"""

import threading

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_lock = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _one_at_a_time(self, environ, start_response):
    if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
        return _dispatch(self, environ, start_response)
    with _lock:
        return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _one_at_a_time

if __name__ == "__main__":
    server.main()
