#!/usr/bin/env python3
"""Writes loket's RFC 4475 torture corpus: one .sip file per test of RFC 4475 §3, named as there.

The messages are loket's own, written from the RFC's descriptions: each reproduces the property
its namesake tests (the whitespace, the escaping, the bad Content-Length ...), not the RFC's text.
Lines are written with CRLF; the body follows the empty line; "{CL}" becomes the body's length.
Usage: python3 sip/tests/rfc4475/generate.py   (rewrites the .sip files beside this script)
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))

SDP = """v=0
o=torture 1 1 IN IP4 192.0.2.10
s=-
c=IN IP4 192.0.2.10
t=0 0
m=audio 49170 RTP/AVP 0 8 101
a=rtpmap:101 telephone-event/8000
"""


def msg(head, body=""):
    """head: header lines joined by \n; body: text joined by \n. Both become CRLF."""
    body_bytes = body.replace("\n", "\r\n").encode() if isinstance(body, str) else body
    text = head.replace("{CL}", str(len(body_bytes))).replace("\n", "\r\n")
    return text.encode() + b"\r\n\r\n" + body_bytes


LONG = "x" * 220
MANY_VIAS = "\n".join(f"Via: SIP/2.0/TCP relay{n}.example.net:5060;branch=z9hG4bK-long-{n}-{LONG[:40]}" for n in range(40))

MESSAGES = {
    # §3.1.1.1: folding, LWS around colons, slashes and equals signs, compact forms, escapes.
    "wsinv": msg("""INVITE sip:agent7@desk.example.be;strangeparam SIP/2.0
TO :
 sip:agent7@desk.example.be ;   tag    = 77t0nq
from   : "Loket \\\\\\""       <sip:citizen@example.org>
  ;
  tag = 4kf93j
MaX-fOrWaRdS: 0068
Call-ID: ws.0ha0isndaksdj@192.0.2.1
Content-Length   : {CL}
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;rport;branch=z9hG4bKws-a1
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.be;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.org   ;
  branch  =   z9hG4bKws-b2  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bKws-c3
m:"Quoted string \\"\\"" <sip:citizen@example.org> ; newparam =
      newvalue ;
  secondparam ; q = 0.33""", SDP),
    # §3.1.1.2: every token character in the method, a URI user with unusual characters (a '?'
    # in the user part is not a header), control characters as quoted-pairs in a display name.
    "intmeth": msg("""!interesting-Method0123456789_*+`.%indeed'~ sip:1_odd.URI~(it!is)&wasn't+it$/odd?,/;;*:&it+has=1,odd!*pas$wo~d_too.(ok)@example.be SIP/2.0
Via: SIP/2.0/TCP host1.example.org;branch=z9hG4bK-.!%66*_+`'~
To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_odd.URI~(it!is)&wasn't+it$/odd?,/;;*@example.be>
From: token1~` token2'+_ token3*%!.- <sip:mundane@example.org>;fromParam''~+*_!.-%="&#1061;&#1072;&#1073;";tag=_token~1'+`*%!-.
Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/"][?}{
CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~
Max-Forwards: 255
extensionHeader-!.%*+_`'~:proper~`token
Content-Length: 0"""),
    # §3.1.1.3: percent escapes in URIs where they are allowed.
    "esc01": msg("""INVITE sip:sips%3Aagent%40example.be@example.net SIP/2.0
To: sip:%61gent@example.be
From: <sip:I%20have%20spaces@example.net>;tag=esc01f
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKesc01
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: {CL}""", SDP),
    # §3.1.1.4: escaped NULs in URIs.
    "escnull": msg("""REGISTER sip:example.be SIP/2.0
To: sip:null-%00-null@example.be
From: sip:null-%00-null@example.be;tag=escnull1
Call-ID: escnull.23940-1384-3432
CSeq: 1 REGISTER
Via: SIP/2.0/UDP 192.0.2.20;branch=z9hG4bKescnull
Max-Forwards: 70
Contact: <sip:%00@host5.example.be>
Contact: <sip:%00%00@host5.example.be>
L:0"""),
    # §3.1.1.5: '%' that is not an escape; the method is an unknown one, not REGISTER.
    "esc02": msg("""RE%47IST%45R sip:registrar.example.be SIP/2.0
To: "%Z%45" <sip:resource@example.be>
From: "%Z%45" <sip:resource@example.be>;tag=esc02f
Max-Forwards: 70
i: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.be;branch=z9hG4bKesc02
CSeq: 170316 RE%47IST%45R
Contact: <sip:alias1@host1.example.be>
Contact: <sip:alias%332@host3.example.be>
Contact: <sip:alias3@host4.example.be>
l: 0"""),
    # §3.1.1.6: no LWS between display name and '<'.
    "lwsdisp": msg("""OPTIONS sip:desk@example.be SIP/2.0
To: sip:desk@example.be
From: caller<sip:caller@example.org>;tag=lwsd323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.org
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.org;branch=z9hG4bKlwsdisp1
l: 0"""),
    # §3.1.1.7: long values everywhere and many Via header fields.
    "longreq": msg(f"""INVITE sip:{LONG}@example.be SIP/2.0
To: "{LONG}" <sip:{LONG}@example.be>;tag={LONG}
From: sip:{LONG}@example.org;tag={LONG}
Call-ID: longreq.{LONG}@{LONG}.example.org
CSeq: 1 INVITE
Max-Forwards: 70
{MANY_VIAS}
Contact: <sip:amazinglylongcallername{LONG}@host5.example.org>
X-Long-Unknown-Header: {LONG}{LONG}{LONG}{LONG}
Content-Type: application/sdp
l: {{CL}}""", SDP),
    # §3.1.1.8: a second message after the first one's body in the same datagram.
    "dblreq": msg("""REGISTER sip:example.be SIP/2.0
To: sip:j.user@example.be
From: sip:j.user@example.be;tag=dblreq43
Max-Forwards: 70
Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKdblreq1
Content-Length: 0""") + msg("""INVITE sip:joe@example.be SIP/2.0
t: sip:joe@example.be
From: sip:caller@example.org;tag=dblreq141
Max-Forwards: 70
Call-ID: dblreq.again@192.0.2.15
CSeq: 1 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKdblreq2
Content-Length: 0"""),
    # §3.1.1.9: parameters separated by ';' inside the user part.
    "semiuri": msg("""OPTIONS sip:user;par=u%40example.net@example.be SIP/2.0
To: sip:j_user@example.be
From: sip:caller@example.org;tag=semiuri33
Max-Forwards: 70
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKsemiuri
l: 0"""),
    # §3.1.1.10: known and unknown transports in Via.
    "transports": msg("""OPTIONS sip:user@example.be SIP/2.0
To: sip:user@example.be
From: <sip:caller@example.org>;tag=transports323
Max-Forwards: 70
Call-ID: transports.lkdlkjsd00zzz@host.example.org
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.org;branch=z9hG4bKtr1
Via: SIP/2.0/SCTP t2.example.org;branch=z9hG4bKtr2
Via: SIP/2.0/TLS t3.example.org;branch=z9hG4bKtr3
Via: SIP/2.0/UNKNOWN t4.example.org;branch=z9hG4bKtr4
Via: SIP/2.0/UDP t5.example.org;branch=z9hG4bKtr5
Via: SIP/2.0/WSS [2001:db8::9]:443;branch=z9hG4bKtr6
l: 0"""),
    # §3.1.1.11: a multipart body with a binary part.
    "mpart01": msg("""MESSAGE sip:desk@example.be SIP/2.0
Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKmpart01
Max-Forwards: 70
From: <sip:citizen@example.org>;tag=mpart01f
To: <sip:desk@example.be>
Call-ID: mpart01.0ha0isndaksdjweiafasdk3
CSeq: 8 MESSAGE
Content-Type: multipart/mixed;boundary=7a9cbec02ceef655
Content-Length: {CL}""", b"--7a9cbec02ceef655\r\nContent-Type: text/plain\r\n\r\nDag, bonjour\r\n"
        b"--7a9cbec02ceef655\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\xfe\xff\r\n\r\n\x80"
        b"\r\n--7a9cbec02ceef655--\r\n"),
    # §3.1.1.12: a reason phrase that is unusual, with UTF-8 beyond ASCII.
    "unreason": msg("""SIP/2.0 200 = 2**3 * 5**2 honderd negenennegentig — cent quatre-vingt-dix-neuf — сто девяносто девять
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bKunreason
Call-ID: unreason.0384840201234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.be;tag=11141343
To: sip:user@example.org;tag=2229
Content-Type: application/sdp
Contact: <sip:user@host198.example.org>
Content-Length: {CL}""", SDP),
    # §3.1.1.13: an empty reason phrase.
    "noreason": msg("""SIP/2.0 100 
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bKnoreason
Call-ID: noreason.0ha0isnda977644900765@192.0.2.15
CSeq: 35 INVITE
From: sip:user@example.be;tag=11141343
To: sip:user@example.org;tag=2229
Content-Length: 0"""),

    # §3.1.2.1: empty list elements and parameters.
    "badinv01": msg("""INVITE sip:user@example.be SIP/2.0
To: sip:j.user@example.be
From: sip:caller@example.org;tag=badinv01f
Max-Forwards: 70
Call-ID: badinv01.0ha0isndaksdjasdf3234nas
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;;,;,,
Contact: "Joe" <sip:joe@example.org>;;;;
Content-Length: {CL}
Content-Type: application/sdp""", SDP),
    # §3.1.2.2: Content-Length larger than the body.
    "clerr": msg("""INVITE sip:user@example.be SIP/2.0
Max-Forwards: 80
To: sip:j.user@example.be
From: sip:caller@example.org;tag=clerr93
Call-ID: clerr.0ha0isndaksdjweiafasdk3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host5.example.org;branch=z9hG4bKclerr
Content-Type: application/sdp
Content-Length: 9999""", SDP),
    # §3.1.2.3: a negative Content-Length.
    "ncl": msg("""INVITE sip:user@example.be SIP/2.0
Max-Forwards: 254
To: sip:j.user@example.be
From: sip:caller@example.org;tag=ncl32
Call-ID: ncl.0ha0isndaksdj99sdfafnl3lk233412
CSeq: 8 INVITE
Via: SIP/2.0/UDP host5.example.org;branch=z9hG4bKncl
Content-Type: application/sdp
Content-Length: -999""", SDP),
    # §3.1.2.4: request scalars beyond their ranges (CSeq, Max-Forwards, Expires, expires param).
    "scalar02": msg("""REGISTER sip:example.be SIP/2.0
Via: SIP/2.0/TCP host129.example.org;branch=z9hG4bKscalar02
From: <sip:user@example.be>;tag=scalar02f
To: <sip:user@example.be>
Call-ID: scalar02.98asdh@192.0.2.1
CSeq: 36893488147419103232 REGISTER
Max-Forwards: 300
Expires: 10000000000000000000
Contact: <sip:user@host129.example.org>;expires=280297596632815
Content-Length: 0"""),
    # §3.1.2.5: response scalars beyond their ranges.
    "scalarlg": msg("""SIP/2.0 503 Service Unavailable
Via: SIP/2.0/TCP host129.example.org;branch=z9hG4bKscalarlg
To: <sip:user@example.be>;tag=2easdjfejw
From: <sip:other@example.org>;tag=scalarlgf
Call-ID: scalarlg.98asdh@192.0.2.2
CSeq: 36893488147419103232 OPTIONS
Retry-After: 18446744073709551616
Warning: 1812 overture "In Progress"
Content-Length: 0"""),
    # §3.1.2.6: an unterminated quoted display name.
    "quotbal": msg("""INVITE sip:user@example.be SIP/2.0
To: "Mr. J. User <sip:j.user@example.be>
From: sip:caller@example.org;tag=quotbal93
Max-Forwards: 10
Call-ID: quotbal.0ha0isndaksdj
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKquotbal
Content-Type: application/sdp
Content-Length: {CL}""", SDP),
    # §3.1.2.7: angle brackets around the Request-URI.
    "ltgtruri": msg("""INVITE <sip:user@example.be> SIP/2.0
To: sip:user@example.be
From: sip:caller@example.org;tag=ltgt39
Max-Forwards: 23
Call-ID: ltgtruri.1@192.0.2.5
CSeq: 1 INVITE
Via: SIP/2.0/UDP 192.0.2.5;branch=z9hG4bKltgt
Content-Type: application/sdp
Content-Length: {CL}""", SDP),
    # §3.1.2.8: LWS inside the Request-URI.
    "lwsruri": msg("""INVITE sip:user@example.be; lr SIP/2.0
To: sip:user@example.be;tag=3xfe-9921883-z9f
From: sip:caller@example.org;tag=lwsruri231
Max-Forwards: 45
Call-ID: lwsruri.1@192.0.2.5
CSeq: 1 INVITE
Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKlwsruri
Content-Type: application/sdp
Content-Length: {CL}""", SDP),
    # §3.1.2.9: several SP between Request-Line elements.
    "lwsstart": msg("""INVITE  sip:user@example.be  SIP/2.0
Max-Forwards: 8
To: sip:user@example.be
From: sip:caller@example.org;tag=lwsstart8
Call-ID: lwsstart.dfsldfkjnasd8
CSeq: 1 INVITE
Via: SIP/2.0/UDP 192.0.2.5;branch=z9hG4bKlwsstart
Content-Type: application/sdp
Content-Length: {CL}""", SDP),
    # §3.1.2.10: SP after the SIP-Version.
    "trws": msg("""OPTIONS sip:remote-target@example.be SIP/2.0  
Via: SIP/2.0/TCP host1.example.org;branch=z9hG4bKtrws
To: <sip:remote-target@example.be>
From: <sip:local-resource@example.org>;tag=trws329
Call-ID: trws.ldknfks.asldfkj29f
CSeq: 89 OPTIONS
Max-Forwards: 70
l: 0"""),
    # §3.1.2.11: an escaped header in the Request-URI.
    "escruri": msg("""INVITE sip:user@example.be?Route=%3Csip:example.be%3E SIP/2.0
To: sip:user@example.be
From: sip:caller@example.org;tag=escruri341
Max-Forwards: 7
Call-ID: escruri.0asdlfkjlkj23
CSeq: 1 INVITE
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKescruri
Content-Type: application/sdp
Content-Length: {CL}""", SDP),
    # §3.1.2.12: a Date in a time zone other than GMT; the RFC lets an element ignore it.
    "baddate": msg("""INVITE sip:user@example.be SIP/2.0
To: sip:user@example.be
From: sip:caller@example.org;tag=baddate2
Max-Forwards: 70
Call-ID: baddate.1@192.0.2.5
CSeq: 1 INVITE
Via: SIP/2.0/UDP 192.0.2.5;branch=z9hG4bKbaddate
Date: Fri, 01 Jan 2010 16:00:00 EST
Content-Type: application/sdp
Content-Length: {CL}""", SDP),
    # §3.1.2.13: a Contact URI with a '?' that is not enclosed in '<>'.
    "regbadct": msg("""REGISTER sip:example.be SIP/2.0
To: sip:user@example.be
From: sip:user@example.be;tag=regbadct998
Max-Forwards: 70
Call-ID: regbadct.k345asrl3fdbv@192.0.2.1
CSeq: 1 REGISTER
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKregbadct
Contact: sip:user@example.be?Route=%3Csip:sip.example.be%3E
l: 0"""),
    # §3.1.2.14: spaces inside the angle brackets of an addr-spec.
    "badaspec": msg("""OPTIONS sip:user@example.be SIP/2.0
Via: SIP/2.0/UDP host4.example.org:5060;branch=z9hG4bKbadaspec;rport
Max-Forwards: 70
From: "Watson, Thomas" < sip:t.watson@example.org > ;tag=badaspec
To: "Bell, Alexander" <sip:a.g.bell@example.be>
Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3
Accept: application/sdp
CSeq: 3923239 OPTIONS
l: 0"""),
    # §3.1.2.15: a non-token character (comma) in an unquoted display name.
    "baddn": msg("""OPTIONS sip:t.watson@example.be SIP/2.0
Via: SIP/2.0/UDP c.example.org:5060;branch=z9hG4bKbaddn
Max-Forwards: 70
From: Bell, Alexander <sip:a.g.bell@example.org>;tag=baddn43
To: Watson, Thomas <sip:t.watson@example.be>
Call-ID: baddn.31415@c.example.org
Accept: application/sdp
CSeq: 47 OPTIONS
Content-Length: 0"""),
    # §3.1.2.16: an unknown protocol version.
    "badvers": msg("""OPTIONS sip:t.watson@example.be SIP/7.0
Via: SIP/7.0/UDP c.example.org;branch=z9hG4bKbadvers
Max-Forwards: 70
From: A. Bell <sip:a.g.bell@example.org>;tag=badvers43
To: T. Watson <sip:t.watson@example.be>
Call-ID: badvers.31417@c.example.org
CSeq: 1 OPTIONS
Content-Length: 0"""),
    # §3.1.2.17: a CSeq method that is not the request's.
    "mismatch01": msg("""OPTIONS sip:user@example.be SIP/2.0
To: sip:j.user@example.be
From: sip:caller@example.org;tag=mismatch01f
Max-Forwards: 70
Call-ID: mismatch01.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
CSeq: 8 INVITE
Via: SIP/2.0/UDP host.example.org;branch=z9hG4bKmismatch01
l: 0"""),
    # §3.1.2.18: an unknown method with a CSeq method that is not the request's.
    "mismatch02": msg("""NEWMETHOD sip:user@example.be SIP/2.0
To: sip:j.user@example.be
From: sip:caller@example.org;tag=mismatch02f
Max-Forwards: 70
Call-ID: mismatch02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
CSeq: 8 INVITE
Contact: <sip:caller@host.example.org>
Via: SIP/2.0/UDP host.example.org;branch=z9hG4bKmismatch02
Content-Type: application/sdp
l: {CL}""", SDP),
    # §3.1.2.19: a response code far beyond three digits.
    "bigcode": msg("""SIP/2.0 4294967301 better not break the receiver
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bKbigcode
Call-ID: bigcode.0ha0isnda977644900765@192.0.2.15
CSeq: 353494 INVITE
From: <sip:user@example.be>;tag=39ansfi3
To: <sip:user@example.org>;tag=902jndnke3
Content-Length: 0"""),

    # §3.2.1: a branch that is only the magic cookie.
    "badbranch": msg("""OPTIONS sip:user@example.be SIP/2.0
To: sip:user@example.be
From: sip:caller@example.org;tag=badbranch33
Max-Forwards: 70
Call-ID: badbranch.sota3oiasdf
CSeq: 17 OPTIONS
Via: SIP/2.0/UDP host1.example.org;branch=z9hG4bK
l: 0"""),

    # §3.3.1: To, From and Call-ID missing.
    "insuf": msg("""INVITE sip:user@example.be SIP/2.0
CSeq: 193942 INVITE
Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKinsuf
Content-Type: application/sdp
l: {CL}""", SDP),
    # §3.3.2: an unknown Request-URI scheme.
    "unkscm": msg("""OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0
To: sip:user@example.be
From: sip:caller@example.org;tag=unkscm384
Max-Forwards: 3
Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34
CSeq: 3923423 OPTIONS
Via: SIP/2.0/TCP host9.example.org;branch=z9hG4bKunkscm
Content-Length: 0"""),
    # §3.3.3: a known but unsupported scheme.
    "novelsc": msg("""OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0
To: sip:user@example.be
From: sip:caller@example.org;tag=novelsc384
Max-Forwards: 3
Call-ID: novelsc.asdfasser0q239nwsdfasdkl34
CSeq: 3923423 OPTIONS
Via: SIP/2.0/TCP host9.example.org;branch=z9hG4bKnovelsc
Content-Length: 0"""),
    # §3.3.4: unknown schemes in header fields are fine.
    "unksm2": msg("""REGISTER sip:example.be SIP/2.0
To: isbn:2983792873
From: <http://www.example.org>;tag=unksm2f
Call-ID: unksm2.Hi.There
CSeq: 234234 REGISTER
Max-Forwards: 70
Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKunksm2
Contact: <name:John_Smith>
l: 0"""),
    # §3.3.5: unsupported extensions in Require and Proxy-Require (the UAS answers 420).
    "bext01": msg("""OPTIONS sip:user@example.be SIP/2.0
To: sip:j_user@example.be
From: sip:caller@example.org;tag=bext01f
Max-Forwards: 70
Call-ID: bext01.0ha0isndaksdjveijf
CSeq: 8 OPTIONS
Via: SIP/2.0/UDP host.example.org;branch=z9hG4bKbext01
Require: nothingSupportsThis, nothingSupportsThisEither
Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis
Content-Length: 0"""),
    # §3.3.6: an unknown Content-Type (the UAS answers 415).
    "invut": msg("""INVITE sip:user@example.be SIP/2.0
Contact: <sip:caller@host5.example.org>
To: sip:j.user@example.be
From: sip:caller@example.org;tag=invut8
Max-Forwards: 70
Call-ID: invut.0ha0isndaksdjadsfij34n23d
CSeq: 235448 INVITE
Via: SIP/2.0/UDP somehost.example.org;branch=z9hG4bKinvut
Content-Type: application/unknownformat
Content-Length: {CL}""", "<audio>\n <pcmu port=\"443\"/>\n</audio>\n"),
    # §3.3.7: an unknown authorization scheme (the registrar answers 401).
    "regaut01": msg("""REGISTER sip:example.be SIP/2.0
To: sip:j.user@example.be
From: sip:j.user@example.be;tag=regaut01f
Max-Forwards: 70
Call-ID: regaut01.0ha0isndaksdj
CSeq: 9338 REGISTER
Via: SIP/2.0/TCP 192.0.2.253;branch=z9hG4bKregaut01
Authorization: NoOneKnowsThisScheme opaque-data=here
Content-Length:0"""),
    # §3.3.8: several values in single-valued header fields.
    "multi01": msg("""INVITE sip:user@company.example.be SIP/2.0
Contact: <sip:caller@host25.example.org>
Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKmulti01
Max-Forwards: 70
CSeq: 5 INVITE
Call-ID: multi01.98asdh@192.0.2.1
CSeq: 59 INVITE
Call-ID: multi01.98asdh@192.0.2.2
From: sip:caller@example.org;tag=3413415
To: sip:user@example.be
To: sip:other@example.net
From: sip:caller@example.net;tag=2923420123
Content-Type: application/sdp
l: {CL}""", SDP),
    # §3.3.9: several Content-Length values.
    "mcl01": msg("""OPTIONS sip:user@example.be SIP/2.0
Via: SIP/2.0/UDP host5.example.org;branch=z9hG4bKmcl01
To: sip:user@example.be
From: sip:other@example.org;tag=mcl01f
Call-ID: mcl01.0ha0isndaksdjadsfij34n23d
Max-Forwards: 70
CSeq: 8 OPTIONS
Content-Length: 0
Content-Length: 4
l: 0""", "body"),
    # §3.3.10: a 200 whose top Via names the broadcast address.
    "bcast": msg("""SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bKbcast;received=255.255.255.255
Via: SIP/2.0/UDP 192.0.2.176;branch=z9hG4bKbcast2
Call-ID: bcast.0384840201@192.0.2.198
CSeq: 1 INVITE
From: sip:user@example.be;tag=11141343
To: sip:user@example.org;tag=2229
Content-Type: application/sdp
Contact: <sip:user@host28.example.org>
Content-Length: {CL}""", SDP),
    # §3.3.11: Max-Forwards of zero (a proxy answers 483, an endpoint processes it).
    "zeromf": msg("""OPTIONS sip:user@example.be SIP/2.0
Call-ID: zeromf.ba89dc3zz@192.0.2.214
CSeq: 3 OPTIONS
From: sip:caller@example.org;tag=zeromf32
To: sip:user@example.be
Via: SIP/2.0/UDP 192.0.2.214;branch=z9hG4bKzeromf
Max-Forwards: 0
Content-Length: 0"""),
    # §3.3.12: REGISTER with Contact parameters inside and outside the brackets.
    "cparam01": msg("""REGISTER sip:example.be SIP/2.0
Via: SIP/2.0/UDP 192.0.2.73;branch=z9hG4bKcparam01
Max-Forwards: 70
From: sip:agent7@example.be;tag=cparam01f
To: sip:agent7@example.be
Call-ID: cparam01.0ha0isnda977644900765@192.0.2.73
CSeq: 1 REGISTER
Contact: <sip:agent7@192.0.2.73;transport=udp;unknownparam>;expires=3600;q=0.5
Contact: <sip:agent7@192.0.2.74>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000a95a0e128>";reg-id=1
l: 0"""),
    # §3.3.13: REGISTER with Contact parameters that look like header parameters.
    "cparam02": msg("""REGISTER sip:example.be SIP/2.0
Via: SIP/2.0/UDP 192.0.2.73;branch=z9hG4bKcparam02
Max-Forwards: 70
From: sip:agent7@example.be;tag=cparam02f
To: sip:agent7@example.be
Call-ID: cparam02.0ha0isnda977644900766@192.0.2.73
CSeq: 3 REGISTER
Contact: <sip:agent7@192.0.2.73;unknownparam=value;newparam>;unknownparam;other="quoted, value"
l: 0"""),
    # §3.3.14: REGISTER whose Contact carries an escaped header inside the brackets.
    "regescrt": msg("""REGISTER sip:example.be SIP/2.0
To: sip:agent7@example.be
From: sip:agent7@example.be;tag=regescrtf
Max-Forwards: 70
Call-ID: regescrt.k345asrl3fdbv@192.0.2.1
CSeq: 1 REGISTER
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKregescrt
Contact: <sip:agent7@example.be?Route=%3Csip:sip.example.be%3E>
l: 0"""),
    # §3.3.15: an Accept that the server cannot satisfy (the UAS answers 406).
    "sdp01": msg("""INVITE sip:user@example.be SIP/2.0
To: sip:j_user@example.be
Contact: <sip:caller@host15.example.org>
From: sip:caller@example.org;tag=sdp01f
Max-Forwards: 70
Call-ID: sdp01.ndaksdj9342dasdd
Accept: text/nobodyKnowsThis
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKsdp01
Content-Length: {CL}
Content-Type: application/sdp""", SDP),

    # §3.4.1: RFC 2543 syntax: no branch, no Max-Forwards.
    "inv2543": msg("""INVITE sip:UserB@example.be SIP/2.0
Via: SIP/2.0/UDP iftgw.example.org
From: <sip:+13035551111@ift.client.example.net;user=phone>
Record-Route: <sip:UserB@example.be;maddr=ss1.example.be>
To: sip:+16505552222@ss1.example.net;user=phone
Call-ID: inv2543.1717@ift.client.example.org
CSeq: 56 INVITE
Content-Type: application/sdp
Content-Length: {CL}""", SDP),
}


def main():
    for name, data in MESSAGES.items():
        with open(os.path.join(HERE, f"{name}.sip"), "wb") as f:
            f.write(data)
    print(f"wrote {len(MESSAGES)} messages to {HERE}")


if __name__ == "__main__":
    main()
