"""A new function of the python3-ocr template (`faas-cli new NAME --lang python3-ocr`): replace this handler.

`handle` takes a flask.Request and returns what Flask accepts (the functions-framework signature), so the
file runs unchanged under functions-framework, behind of-watchdog in the image and in the local gateway.
The body arrives byte for byte, whatever its Content-Type (images and PDFs included).
"""

import hashlib

import flask


def handle(request: flask.Request) -> flask.Response:
    body = request.get_data()
    return flask.jsonify(
        function="python3-ocr",
        method=request.method,
        content_type=request.content_type,
        size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
    )
