package digest_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"

	"github.com/ucsec/ucsec/digest"
)

// A registrar challenges a REGISTER, then verifies the resent request.
// Any SIP stack supplies the method, Request-URI, body and Authorization
// header values, and sends the answer.
func ExampleServer() {
	users := &digest.MemoryStore{}
	users.AddPassword("alice", "cluster.example.com", "s3cret")
	server := &digest.Server{
		Realm:       "cluster.example.com",
		Credentials: users,
		Secrets:     [][]byte{[]byte("a secret shared by the cluster's nodes")},
	}
	ctx := context.Background()

	// The first REGISTER has no credentials: answer 401 with challenges.
	req := &digest.Request{Method: "REGISTER", URI: "sip:cluster.example.com", RemoteAddr: netip.MustParseAddr("192.0.2.10")}
	_, err := server.Verify(ctx, req)
	answer, _ := server.Answer(req, err)
	fmt.Println(err)
	fmt.Println(answer.Status, answer.Header)

	// The phone answers (here: the package's client) and resends.
	phone := &digest.Client{Credentials: []digest.ClientCredential{{Realm: "cluster.example.com", Username: "alice", Password: "s3cret"}}}
	auth, err := phone.Authorize(answer.Values, "REGISTER", "sip:cluster.example.com", nil)
	if err != nil {
		log.Fatal(err)
	}
	req.Authorization = []string{auth}
	res, err := server.Verify(ctx, req)
	fmt.Println(res.Username, err)

	// The same request again is a replay.
	_, err = server.Verify(ctx, req)
	fmt.Println(err)
	// Output:
	// digest: no credentials for this realm
	// 401 WWW-Authenticate
	// alice <nil>
	// digest: replayed nonce count
}

// A trunk answers the challenges of the peers it has credentials for,
// and of no one else.
func ExampleClient() {
	trunk := &digest.Client{Credentials: []digest.ClientCredential{
		{Realm: "carrier.example.net", Username: "pbx1", Password: "trunk-secret"},
	}}
	challenges := []string{
		`Digest realm="carrier.example.net", nonce="3b1c0fa2", algorithm=MD5, qop="auth"`,
		`Digest realm="carrier.example.net", nonce="7d8e9f00", algorithm=SHA-256, qop="auth"`,
	}
	auth, err := trunk.Authorize(challenges, "INVITE", "sip:+15551234@carrier.example.net", nil)
	if err != nil {
		log.Fatal(err)
	}
	cr, _ := digest.ParseCredentials(auth)
	fmt.Println(cr.Algorithm, cr.Nonce, cr.NC)

	_, err = trunk.Authorize([]string{`Digest realm="elsewhere", nonce="1"`}, "BYE", "sip:x@example.org", nil)
	fmt.Println(err)
	// Output:
	// SHA-256 7d8e9f00 1
	// digest: no credentials for the challenged realm
}

// Respond computes credentials with a chosen cnonce and count: the RFC 2617
// §3.5 example.
func ExampleRespond() {
	ch, err := digest.ParseChallenges(`Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"`)
	if err != nil {
		log.Fatal(err)
	}
	cr, err := digest.Respond(ch[0], digest.RespondOptions{Username: "Mufasa", Password: "Circle Of Life", Method: "GET", URI: "/dir/index.html", QOP: "auth", CNonce: "0a4f113b", NC: 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cr.Response)
	// Output: 6629fae49393a05397450978507c4ef1
}
