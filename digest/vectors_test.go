package digest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The known-answer tests, each recomputed through Respond (the client side)
// and ResponseMatches (the check a server makes): V1 is the example of
// RFC 2617 §3.5, V2 and V3 those of RFC 7616 §3.9.1 (V4, RFC 7616 §3.9.2,
// has a test of its own below), V5 the -sess forms on V2's inputs, V6 and
// V9 vectors of the icholy/digest tests, V7 the REGISTERs that SIPp 3.6.1
// sent to a loopback test server, and V8 V7's inputs with SHA-256 and
// SHA-512-256.
func TestVectors(t *testing.T) {
	type vec struct {
		name                       string
		alg                        Algorithm
		user, realm, pass          string
		method, uri, nonce, cnonce string
		nc                         uint32
		qop, opaque                string
		body                       []byte
		ha1, response              string
	}
	v2 := vec{
		alg: MD5, user: "Mufasa", realm: "http-auth@example.org", pass: "Circle of Life",
		method: "GET", uri: "/dir/index.html", nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
		cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", nc: 1, qop: "auth",
		opaque: "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
	}
	v7 := vec{
		alg: MD5, user: "alice", realm: "test.local", pass: "s3cret", method: "REGISTER",
		uri: "sip:127.0.0.1:5070", nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque: "op4que",
	}
	with := func(base vec, f func(*vec)) vec { f(&base); return base }
	vectors := []vec{
		{name: "V1 RFC 2617", alg: MD5, user: "Mufasa", realm: "testrealm@host.com", pass: "Circle Of Life",
			method: "GET", uri: "/dir/index.html", nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", cnonce: "0a4f113b", nc: 1,
			qop: "auth", opaque: "5ccc069c403ebaf9f0171e9517f40e41",
			ha1: "939e7578ed9e3c518a452acee763bce9", response: "6629fae49393a05397450978507c4ef1"},
		{name: "V1 without qop", alg: MD5, user: "Mufasa", realm: "testrealm@host.com", pass: "Circle Of Life",
			method: "GET", uri: "/dir/index.html", nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
			response: "670fd8c2df070c60b045671b8b24ff02"},
		with(v2, func(v *vec) {
			v.name, v.ha1, v.response = "V2 RFC 7616 MD5", "3d78807defe7de2157e2b0b6573a855f", "8ca523f5e9506fed4657c9700eebdbec"
		}),
		with(v2, func(v *vec) {
			v.name, v.alg = "V3 RFC 7616 SHA-256", SHA256
			v.ha1 = "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
			v.response = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
		}),
		with(v2, func(v *vec) { v.name, v.alg, v.response = "V5 MD5-sess", MD5Sess, "e783283f46242139c486a698fec7211d" }),
		with(v2, func(v *vec) {
			v.name, v.alg, v.response = "V5 SHA-256-sess", SHA256Sess, "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7"
		}),
		{name: "V6 SIP REGISTER", alg: MD5, user: "the-user", realm: "SipPeer", pass: "********", method: "REGISTER",
			uri: "sip:182.82.132.122", nonce: "970a1b42-d8a7-4fce-91a1-4767e9ed561b", cnonce: "104adc6bd71f49678798ee646edcaa9a",
			nc: 1, qop: "auth", response: "6cf0981e056709d40c8acc40c87e73c6"},
		with(v7, func(v *vec) {
			v.name, v.cnonce, v.nc, v.qop = "V7 SIPp auth", "6b8b4567", 1, "auth"
			v.ha1, v.response = "07848e838e1e831e7b0cf70146cc5447", "cd98f89d1a9e2a523a6f2b32860d1dc6"
		}),
		with(v7, func(v *vec) {
			v.name, v.cnonce, v.nc, v.qop, v.response = "V7 SIPp auth nc=2", "327b23c6", 2, "auth", "ae5bd3f6d6c5d7e0589df1957697d8dc"
		}),
		with(v7, func(v *vec) {
			v.name, v.cnonce, v.nc, v.qop, v.response = "V7 SIPp auth-int", "6b8b4567", 1, "auth-int", "5d36111865febdf7a9c32b0e5b9fa977"
		}),
		with(v7, func(v *vec) {
			v.name, v.cnonce, v.nc, v.qop, v.response = "V7 SIPp auth-int nc=2", "327b23c6", 2, "auth-int", "888290b5e31f8e42e195bc3695003b25"
		}),
		with(v7, func(v *vec) { v.name, v.response = "V7 SIPp no qop", "dcfd5bb5143ef24933c08679a1bf28cc" }),
		with(v7, func(v *vec) {
			v.name, v.alg, v.cnonce, v.nc, v.qop = "V8 SHA-256", SHA256, "6b8b4567", 1, "auth"
			v.ha1 = "ada31070d2fb8a0c7caa11f7d6c9ef938658ec9682d408125f470ccd22a37183"
			v.response = "55fa12c8e1b5e80a336a79cc2b10a1b089022b42a7c3b552426ae4660fe6ca5b"
		}),
		with(v7, func(v *vec) {
			v.name, v.alg, v.cnonce, v.nc, v.qop = "V8 SHA-512-256", SHA512_256, "6b8b4567", 1, "auth"
			v.ha1 = "981e8b32e51ff4e5201c3fd55a1d57fdb1afad68ed0211a68d218310ec003acc"
			v.response = "3da1b8c6c3a5d117b5c590aab2e3c3c861bff39a45f97c4aba39ebeb559e93fe"
		}),
		{name: "V9 auth-int empty body", alg: MD5, user: "foo", realm: "me@kennethreitz.com", pass: "bar", method: "GET",
			uri: "/digest-auth/auth-int/foo/bar", nonce: "7a5462bc2121c2e609e6f71c64d341c1",
			cnonce: "MjhjOWI2ZDRmNmVkNjlmYzRmMTdjZjAxYmU4ZTNkM2U=", nc: 1, qop: "auth-int",
			response: "a86955ec413135f7902c0bae37d75469"},
	}
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			ha1 := HA1(v.alg, v.user, v.realm, v.pass)
			if v.ha1 != "" {
				assert.Equal(t, v.ha1, ha1)
			}
			ch := &Challenge{Realm: v.realm, Nonce: v.nonce, Opaque: v.opaque, Algorithm: v.alg}
			if v.qop != "" {
				ch.QOP = []string{"auth", "auth-int"}
			}
			cr, err := Respond(ch, RespondOptions{Username: v.user, Password: v.pass, Method: v.method, URI: v.uri, Body: v.body, QOP: v.qop, CNonce: v.cnonce, NC: v.nc})
			require.NoError(t, err)
			assert.Equal(t, v.response, cr.Response)
			assert.True(t, cr.ResponseMatches(v.method, v.body, ha1))
			assert.False(t, cr.ResponseMatches(v.method, []byte("x"), ha1) && v.qop == "auth-int")
			assert.False(t, cr.ResponseMatches("INVITE", v.body, ha1))

			// Through the header text and back.
			again, err := ParseCredentials(cr.String())
			require.NoError(t, err)
			assert.Equal(t, cr, again)
		})
	}
}

// TestVectorSHA512256UserHash is V4: RFC 7616 §3.9.2 with the errata
// values. The values printed in the RFC are truncated SHA-512 and must be
// rejected.
func TestVectorSHA512256UserHash(t *testing.T) {
	user, realm, pass := "J\u00e4s\u00f8n Doe", "api@example.org", "Secret, or not?"
	ch := &Challenge{Realm: realm, Nonce: "5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK",
		Opaque: "HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", Algorithm: SHA512_256, QOP: []string{"auth"},
		Charset: "UTF-8", UserHash: true}
	cr, err := Respond(ch, RespondOptions{Username: user, Password: pass, Method: "GET", URI: "/doe.json", QOP: "auth", CNonce: "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v", NC: 1})
	require.NoError(t, err)
	assert.Equal(t, "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b", cr.Username)
	assert.Equal(t, "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5", cr.Response)
	ha1 := HA1(SHA512_256, user, realm, pass)
	assert.Equal(t, "2d3d9f12c9f3d30011259dc5fecee005ae24de40e3e1f61806d03e65f1e6024f", ha1)
	assert.True(t, cr.ResponseMatches("GET", nil, ha1))

	printed := *cr
	printed.Response = "ae66e67d6b427bd3f120414a82e4acff38e8ecd9101d6c861229025f607a79dd"
	assert.False(t, printed.ResponseMatches("GET", nil, ha1), "the RFC's printed (truncated SHA-512) response must not verify")
	assert.NotEqual(t, "488869477bf257147b804c45308cd62ac4e25eb717b12b298c79e62dcea254ec", cr.Username)
}

// TestSessBinaryHA1Rejected: MD5-sess over the binary HA1 (RFC 2617's
// sample code) is not what RFC 7616 specifies; its response must not
// verify (V5's negative).
func TestSessBinaryHA1Rejected(t *testing.T) {
	cr := &Credentials{Username: "Mufasa", Realm: "http-auth@example.org", Nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
		URI: "/dir/index.html", Algorithm: MD5Sess, CNonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", NC: 1, QOP: "auth",
		Response: "1fb4c83ba09202aa036109966f401162"}
	assert.False(t, cr.ResponseMatches("GET", nil, HA1(MD5, "Mufasa", "http-auth@example.org", "Circle of Life")))
	cr.Response = "e783283f46242139c486a698fec7211d"
	assert.True(t, cr.ResponseMatches("GET", nil, HA1(MD5, "Mufasa", "http-auth@example.org", "Circle of Life")))
}

// TestSIPpHeader parses the exact header SIPp 3.6.1 sent (V7) and checks it.
func TestSIPpHeader(t *testing.T) {
	h := `Digest username="alice",realm="test.local",cnonce="6b8b4567",nc=00000001,qop=auth,uri="sip:127.0.0.1:5070",nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",response="cd98f89d1a9e2a523a6f2b32860d1dc6",algorithm=MD5,opaque="op4que"`
	cr, err := ParseCredentials(h)
	require.NoError(t, err)
	assert.Equal(t, &Credentials{Username: "alice", Realm: "test.local", CNonce: "6b8b4567", NC: 1, QOP: "auth",
		URI: "sip:127.0.0.1:5070", Nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", Response: "cd98f89d1a9e2a523a6f2b32860d1dc6",
		Algorithm: MD5, Opaque: "op4que"}, cr)
	assert.True(t, cr.ResponseMatches("REGISTER", nil, HA1(MD5, "alice", "test.local", "s3cret")))

	chs, err := ParseChallenges(`Digest realm="test.local", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="op4que", algorithm=MD5, qop="auth"`)
	require.NoError(t, err)
	require.Len(t, chs, 1)
	assert.Equal(t, &Challenge{Realm: "test.local", Nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", Opaque: "op4que",
		Algorithm: MD5, QOP: []string{"auth"}}, chs[0])
}
