#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/<target>/ (run from anywhere).

The targets that use FuzzedDataProvider read their parameters from the end of
the input, one byte each here; `trailer(...)` writes them in the order the
target consumes them. Seeds are small and valid or nearly so: libFuzzer finds
the broken ones itself.
"""
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"


def trailer(*consumed):
    """Bytes that FuzzedDataProvider hands out, last byte first, in `consumed` order."""
    return bytes(reversed(consumed))


def write(target, name, data):
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


# (1) livecast.v1: one client message, as is.
v1 = {
    "subscribe": '{"op":"subscribe","id":1,"topic":"kpi.revenue"}',
    "subscribe_recover": '{"op":"subscribe","id":7,"topic":"org:acme:kpi","recover":{"epoch":"k3f9a1c2","offset":120}}',
    "subscribe_no_id": '{"op":"subscribe","topic":"t","recover":{"epoch":"","offset":0}}',
    "unsubscribe": '{"op":"unsubscribe","id":2,"topic":"kpi.revenue"}',
    "publish": '{"op":"publish","id":3,"topic":"chat","data":{"total":1250.5,"currency":"EUR","tags":["a","b"],"n":null,"ok":true}}',
    "publish_scalar": '{"op":"publish","topic":"x","data":-12.5e-3}',
    "publish_nested": '{"op":"publish","topic":"x","data":[[[[{"a":[{}]}]]]]}',
    "publish_escapes": '{"op":"publish","topic":"\\u00e9t\\u00e9","data":"\\ud83d\\ude00 \\n\\t\\"\\\\\\/\\u0001"}',
    "ping": '{"op":"ping","id":4}',
    "ping_bare": '{"op":"ping"}',
    "unknown_op": '{"op":"refresh","id":5,"token":"abc"}',
    "id_limits": '{"op":"ping","id":-9223372036854775808}',
    "id_too_big": '{"op":"ping","id":9223372036854775808}',
    "offset_max": '{"op":"subscribe","topic":"t","recover":{"epoch":"e","offset":18446744073709551615}}',
    "lone_surrogate_topic": '{"op":"subscribe","topic":"\\udc00"}',
    "lone_surrogate_data": '{"op":"publish","topic":"t","data":"\\udfff"}',
    "lone_surrogate_epoch": '{"op":"subscribe","topic":"t","recover":{"epoch":"\\udc00","offset":1}}',
    "repeated_keys": '{"op":"ping","op":"publish","topic":"a","topic":"b","data":1,"data":{"x":2}}',
    "not_object": '["op","subscribe"]',
    "whitespace": ' \t\r\n{ "op" : "unsubscribe" , "topic" : "a" } \n',
    "bad_utf8": b'{"op":"subscribe","topic":"\xc3\x28"}',
    "nul_escape": '{"op":"subscribe","topic":"a\\u0000b"}',
    "truncated": '{"op":"publish","topic":"t","data":{"a":[1,2',
}
for name, text in v1.items():
    write("livecast_v1", name, text)

# (2) HTTP: <request stream> <chunk sizes> <chunk count> <mode>.
def http(name, stream, chunks=(), mode=0):
    sizes = [c - 1 for c in chunks]
    write("http_request", name, stream.encode("latin-1") + trailer(mode, len(chunks), *sizes))

http("get_sse", "GET /sse?topics=kpi.revenue,org%3Aacme%3Akpi&cursor=kpi.revenue:k3f9:120&protocol=livecast.v1 HTTP/1.1\r\n"
     "Host: dash.example.com\r\nOrigin: https://dash.example.com\r\nLast-Event-ID: kpi.revenue:e1:7\r\n\r\n", (3, 17, 40))
http("poll_post", "POST /poll?session=abc HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 28\r\n\r\n"
     '{"op":"ping","id":1}\n{"op":1}', (60, 1, 1, 1))
http("pipelined", "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b?x=1&x=2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", (20, 20))
http("http10_keepalive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
http("cookies", "GET /poll?topics=a&timeout=0 HTTP/1.1\r\nHost: h\r\nCookie: livecast_token=\"abc.def\"; other=1; =x; y\r\n"
     "Cookie: second=2\r\nAuthorization: Bearer eyJhbGciOi.x.y\r\n\r\n", (5,))
http("upgrade", "GET /ws?token=t%20x+y HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: livecast.v1\r\n\r\n")
http("bare_lf", "GET / HTTP/1.1\nHost: h\n\n")
http("leading_crlf", "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
http("chunked_refused", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
http("content_length_conflict", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
http("small_limits", "POST /xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx HTTP/1.1\r\nHost: h\r\n"
     "Content-Length: 40\r\n\r\n0123456789012345678901234567890123456789", (7,), mode=1)
http("version_2", "GET / HTTP/2.0\r\nHost: h\r\n\r\n")
http("folding", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  b\r\n\r\n")
http("cursor_list", "GET /sse?topics=a%2Cb,c&cursor=a%2Cb:e%3A1:0,c::9007199254740992 HTTP/1.1\r\nHost: h\r\n\r\n", (1,) * 16)

# (3) RESP: <bytes> <chunk sizes> <chunk count> <mode: even = replies, odd = command>.
def resp(name, stream, chunks=()):
    sizes = [c - 1 for c in chunks]
    write("redis_reply", name, stream + trailer(0, len(chunks), *sizes))

resp("status", b"+OK\r\n")
resp("error", b"-NOSCRIPT No matching script. Please use EVAL.\r\n")
resp("integer", b":1000\r\n:-42\r\n:0\r\n")
resp("bulk", b"$5\r\nhello\r\n$0\r\n\r\n$-1\r\n", (2, 3))
resp("nil_array", b"*-1\r\n*0\r\n")
resp("pubsub", b"*3\r\n$9\r\nsubscribe\r\n$11\r\nlivecast:t1\r\n:1\r\n"
     b"*3\r\n$7\r\nmessage\r\n$11\r\nlivecast:t1\r\n$21\r\n{\"o\":3,\"d\":[1,2,\"\r\n\"]}\r\n", (1,) * 12)
resp("xrange", b"*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nd\r\n$4\r\n\"a\"\x00\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nd\r\n$2\r\n{}\r\n")
resp("script", b"*4\r\n$8\r\nepoch-01\r\n:17\r\n*-1\r\n*1\r\n*2\r\n+x\r\n-ERR nested\r\n")
resp("deep", b"*1\r\n" * 7 + b":1\r\n")
resp("binary_bulk", b"$8\r\n\x00\xff\r\n\r\n$\x01\r\n")
resp("partial", b"*3\r\n$3\r\nfoo\r\n$3\r\nba")
resp("bad_type", b"?what\r\n")
write("redis_reply", "command", b"PUBLISH\\ livecast:org:acme\\ {\"a\":1}\\ \\\\x" + trailer(1))
write("redis_reply", "command_empty_args", b"\\ \\ \\ " + trailer(1))

# (4) Authorizer: <texts, each ended by "\\ "> <choices>. Front, in order: the
# principal's id, its org and team claims (when present), each rule's
# pattern, the pattern, the topic. Back, in the order consumed: for each text
# whether to map it onto a small alphabet (0: no), whether org/team/role are
# present and the role's choice, the rule count, and per rule action (0:
# publish, 1: subscribe), allow (1) or deny (0), pattern mapping, role
# (0 none, 1 viewer, 2 admin).
def authz(name, texts, consumed):
    write("authorizer", name, "".join(t + "\\ " for t in texts).encode() + trailer(*consumed))

# id, has_org, org, has_team, team, has_role, role (1: viewer, 0: admin), rules...
authz("readme_rules_viewer",
      ["viewer@acme", "acme", "org:{org}:*", "org:{org}:transactions", "org:{org}:chat", "org:{org}:*", "org:acme:transactions"],
      [0, 1, 0, 0, 1, 1, 3, 1, 1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 2, 0, 0])
authz("claim_with_separator",
      ["viewer@acme", "acme:transactions", "org:{org}", "org:{org}:transactions", "org:{org}:*", "org:acme:transactions"],
      [0, 1, 0, 0, 1, 1, 2, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0])
authz("deny_missing_claim",
      ["nobody", "*", "org:{org}:transactions", "org:{org}:transactions", "org:globex:transactions"],
      [0, 0, 0, 0, 2, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0])
authz("user_id", ["alice", "user:{id}", "user:{id}", "user:alice"], [0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0])
authz("globs", ["x", "a*b?c*", "a*b?c*", "aXXbYcZZ"], [0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0])
authz("unclosed_brace", ["x", "o", "org:{org", "org:{org", "org:{org"], [0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0])
authz("team_and_org", ["u", "acme", "red", "{org}:{team}:*", "{org}:{team}:*", "acme:red:x"],
      [0, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0])

# (5) WebSocket, after the handshake: <client frames> <chunk sizes> <chunk count>
# <mode: bit 0 offer livecast.v1, bit 1 server closes after the first chunk,
# bit 2 end with end-of-file>.
def frame(opcode, payload, fin=True, mask=b"\x37\xfa\x21\x3d", length_form=None):
    payload = payload.encode() if isinstance(payload, str) else payload
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if length_form == 127 or n > 0xFFFF:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    elif length_form == 126 or n > 125:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | n])
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws(name, frames, chunks=(), mode=5):
    sizes = [c - 1 for c in chunks]
    seed = b"".join(frames) + trailer(mode, len(chunks), *sizes)
    write("websocket", name, seed)
    # fuzz_websocket_frame_reader reads the same layout (mode: its size limit).
    write("websocket_frame_reader", name, seed)

ws("subscribe", [frame(1, '{"op":"subscribe","id":1,"topic":"kpi.revenue"}')], (3, 5))
ws("ping_pong_close", [frame(9, "hi"), frame(10, ""), frame(8, b"\x03\xe8bye")])
ws("fragmented", [frame(1, '{"op":"pub', fin=False), frame(9, "in-between"), frame(0, 'lish","topic":"t","data":[1]}')],
   (1,) * 16)
ws("binary", [frame(2, b"\x00\x01\x02")])
ws("utf8_split", [frame(1, "\xe2\x82".encode("latin-1"), fin=False), frame(0, b"\xac")])
ws("bad_utf8", [frame(1, b"\xc3\x28")])
ws("long_lengths", [frame(1, "x" * 130), frame(1, "y", length_form=127)], (2, 2, 2))
ws("unmasked", [b"\x81\x05hello"])
ws("too_big", [b"\x81\xff" + (2 ** 62).to_bytes(8, "big") + b"\x00\x00\x00\x00"])
ws("reserved_bits", [b"\xf1\x80\x00\x00\x00\x00", frame(3, "x")])
ws("server_closes", [frame(1, '{"op":"ping"}'), frame(8, b"\x03\xe8")], (10,), mode=3)
ws("close_bad_code", [frame(8, b"\x03\xed"), frame(8, b"\x0b\xb8\xff")], mode=0)
ws("many_pings", [frame(9, "p" * 125)] * 8, mode=4)

# (6) JWT: raw mode <token> <mode 0|4>; signed mode <header JSON>\ <claims JSON>
# <mode: bits 0-1 1 HS256, 2 ES256, 3 RS256; bit 2 strict (aud and iss needed)>.
import base64, hashlib, hmac, json

SECRET = b"0123456789abcdef0123456789abcdef"  # tests/fuzz/jwt.cpp's HS256 secret
NOW = 1_800_000_000                           # and its clock


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def hs256_token(header, claims, key=SECRET):
    signing_input = b64url(header.encode()) + b"." + b64url(claims.encode())
    return signing_input + b"." + b64url(hmac.new(key, signing_input, hashlib.sha256).digest())


def jwt_signed(name, header, claims, mode):
    write("jwt", name, header.encode() + b"\\ " + claims.encode() + trailer(mode))


def jwt_raw(name, token, strict=False):
    write("jwt", name, token + trailer(4 if strict else 0))

good = json.dumps({"sub": "alice", "exp": NOW + 600, "org": "acme", "roles": ["viewer"]}, separators=(",", ":"))
strict = json.dumps({"sub": "alice", "exp": NOW + 600, "iat": NOW - 5, "nbf": NOW - 5, "aud": ["x", "dashboard"],
                     "iss": "https://idp.example", "org": "acme", "team": 7}, separators=(",", ":"))
jwt_raw("raw_hs256", hs256_token('{"alg":"HS256","typ":"JWT"}', good))
jwt_raw("raw_hs256_strict", hs256_token('{"alg":"HS256"}', strict), strict=True)
jwt_raw("raw_kid", hs256_token('{"alg":"HS256","kid":"hs-2"}', good, SECRET + b"-rotated"))
jwt_raw("raw_alg_none", b64url(b'{"alg":"none"}') + b"." + b64url(good.encode()) + b".")
jwt_raw("raw_jwe_shape", b"a.b.c.d.e")
jwt_raw("raw_padding", hs256_token('{"alg":"HS256"}', good) + b"==")
jwt_signed("hs256", '{"alg":"HS256","typ":"JWT"}', good, 1)
jwt_signed("hs256_strict", '{"alg":"HS256"}', strict, 5)
jwt_signed("es256", '{"alg":"ES256"}', good, 2)
jwt_signed("rs256_kid", '{"alg":"RS256","kid":"rsa-1"}', strict, 7)
jwt_signed("wrong_alg", '{"alg":"RS256"}', good, 1)
jwt_signed("crit", '{"alg":"HS256","crit":["exp"]}', good, 1)
jwt_signed("claim_separator", '{"alg":"HS256"}', '{"sub":"a","exp":1800000600,"org":"acme:payroll"}', 1)
jwt_signed("numbers", '{"alg":"HS256"}', '{"sub":42,"exp":1.8000006e9,"nbf":1800000030,"org":4.2e1,"team":-0.5}', 1)
jwt_signed("expired", '{"alg":"HS256"}', '{"sub":"a","exp":1799999970}', 1)
jwt_signed("duplicate", '{"alg":"HS256","alg":"none"}', '{"sub":"a","sub":"b","exp":1800000600}', 1)
jwt_signed("no_exp", '{"alg":"HS256"}', '{"sub":"a","roles":"admin"}', 1)

# WebSocket with the handshake from the input (mode bit 3): <handshake>\ <frames> ...
def ws_handshake(name, handshake, frames=(), mode=8 | 4):
    head = handshake.encode("latin-1").replace(b"\\", b"\\\\") + b"\\ "
    write("websocket", name, head + b"".join(frames) + trailer(mode, 0))

UPGRADE = ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n")
ws_handshake("handshake_plain", "GET /ws HTTP/1.1\r\nHost: h\r\n" + UPGRADE + "\r\n", [frame(1, '{"op":"ping","id":1}')])
ws_handshake("handshake_repeated", "GET /ws?token=a%20b HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Protocol: livecast.v1\r\n"
             + UPGRADE + "Sec-WebSocket-Protocol: livecast.bearer.abc\r\nX-Tab: a\tb\r\nX-Obs: caf\xe9\r\n\r\n")
ws_handshake("handshake_case", "GET /ws HTTP/1.1\r\nHOST: h\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\n"
             "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n")
ws_handshake("handshake_absolute", "GET http://h/ws HTTP/1.1\r\nHost: h\r\n" + UPGRADE + "\r\n")
ws_handshake("handshake_not_upgrade", "GET /page?x=1 HTTP/1.1\r\nHost: h\r\n\r\n")
ws_handshake("handshake_http10", "GET /ws HTTP/1.0\r\nHost: h\r\n" + UPGRADE + "\r\n")
ws_handshake("handshake_body", "POST /ws HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n" + UPGRADE + "\r\nbody")

# (7) POST /publish: one body, as is.
publish = {
    "one": '{"topic":"org:acme:kpi.revenue","data":{"total":1250.5,"tags":["a","b"],"n":null,"ok":true}}',
    "batch": '[{"topic":"a","data":1},{"topic":"b","data":"x"},{"data":[3],"topic":"a"}]',
    "batch_too_many": '[{"topic":"a","data":1},{"topic":"a","data":2},{"topic":"a","data":3},{"topic":"a","data":4},{"topic":"a","data":5}]',
    "escapes": '{"topic":"\\u00e9t\\u00e9","data":"\\ud83d\\ude00 \\n\\"\\u0001"}',
    "lone_surrogate_topic": '{"topic":"\\udc00","data":1}',
    "lone_surrogate_data": '[{"topic":"t","data":1},{"topic":"t","data":{"k":"\\udfff"}}]',
    "numbers": '{"topic":"t","data":[12345678901234567890123,-0,0e41,1.5E-7]}',
    "unknown_field": '{"topic":"t","data":1,"dta":2}',
    "repeated": '{"topic":"t","topic":"u","data":1}',
    "nested": '{"topic":"t","data":[[[[{"a":[{}]}]]]]}',
    "empty_batch": '[]',
    "scalar_item": '[{"topic":"t","data":1},7]',
    "truncated": '[{"topic":"t","data":{"a":[1,2',
}
for name, text in publish.items():
    write("publish_request", name, text)

# (8) socket.io: one Engine.IO packet, as is.
socketio = {
    "pong": "3",
    "ping": "2",
    "noop": "6",
    "close": "1",
    "probe": "2probe",
    "upgrade": "5",
    "connect": "40",
    "connect_auth": '40{"token":"abc.def.ghi","room":"x"}',
    "connect_nsp": '40/admin,{"token":"t"}',
    "connect_main_nsp": '40/,{"token":"t"}',
    "disconnect": "41",
    "event": '42["chat",{"text":"hi","n":[1,2.5,-0,1E300]},null,true]',
    "event_ack": '4212["chat"]',
    "event_nsp_ack": '42/,7["e",1]',
    "event_reserved": '42["disconnect"]',
    "event_number_name": '42[1,"a"]',
    "event_escapes": '42["\\u00e9t\\u00e9","\\ud83d\\ude00 \\n\\"\\u0001"]',
    "event_lone_surrogate": '42["e","\\udc00"]',
    "subscribe": '423["subscribe","kpi.revenue"]',
    "subscribe_object": '42["subscribe",{"topic":"org:acme","recover":{"epoch":"k3f9","offset":120}}]',
    "subscribe_bad_recover": '42["subscribe",{"topic":"t","recover":{"epoch":"e","offset":-1}}]',
    "unsubscribe": '424["unsubscribe",{"topic":"t"}]',
    "ack": '435["ok",{"a":1}]',
    "ack_id_max": '429223372036854775807["e"]',
    "ack_id_too_big": '429223372036854775808["e"]',
    "binary_event": '451-["e",{"_placeholder":true,"num":0}]',
    "binary_event_ack": '451-0["e",{"_placeholder":true,"num":0}]',
    "binary_event_twice": '451-451-_"e",{"_pp;l]',
    "binary_ack": '461-3[{"_placeholder":true,"num":0}]',
    "base64": "bAQIDBA==",
    "truncated": '42["e",{"a":[1,2',
    "bad_utf8": b'42["e","\xc3\x28"]',
}
for name, text in socketio.items():
    write("socketio", name, text)
