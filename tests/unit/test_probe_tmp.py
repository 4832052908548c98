from tests.unit.serving_harness import connect, read_answer


def test_probe(flask_address):
    for req in (
        b"TRACE /a HTTP/1.1\r\nHost: t\r\n\r\n",
        b"PROPFIND /a HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /a%00 HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /%ZZ HTTP/1.1\r\nHost: t\r\n\r\n",
    ):
        with connect(flask_address) as s:
            s.sendall(req)
            print(req[:30], read_answer(s)[0::2])
