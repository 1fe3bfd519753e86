package srtpkeys_test

import (
	"encoding/hex"
	"fmt"
	"log"

	"github.com/pion/rtp"
	"github.com/ucsec/ucsec/srtpkeys"
)

// A call controller keys a call between phones A and B: one master key per
// direction, each handed to the sender and the receiver of that direction.
func ExampleGenerateCallKeys() {
	keys, err := srtpkeys.GenerateCallKeys(nil, srtpkeys.AES128CM_SHA1_80)
	if err != nil {
		log.Fatal(err)
	}
	aSend, _ := keys.A() // A encrypts with AtoB …
	_, bRecv := keys.B() // … and B decrypts with it.
	fmt.Println("same key both ends:", aSend.Equal(bRecv))
	fmt.Println("directions differ:", !keys.AtoB.Equal(keys.BtoA))
	fmt.Println(aSend) // never prints key bytes

	sender, err := srtpkeys.NewContext(aSend, nil)
	if err != nil {
		log.Fatal(err)
	}
	receiver, err := srtpkeys.NewContext(bRecv, nil) // replay protection on
	if err != nil {
		log.Fatal(err)
	}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 1, SSRC: 0x1234}, Payload: []byte("hello")}
	raw, err := pkt.Marshal()
	if err != nil {
		log.Fatal(err)
	}
	srtpPkt, err := sender.EncryptRTP(nil, raw, nil)
	if err != nil {
		log.Fatal(err)
	}
	plain, err := receiver.DecryptRTP(nil, srtpPkt, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("B got %q\n", plain[12:])
	_, err = receiver.DecryptRTP(nil, srtpPkt, nil)
	fmt.Println("replay refused:", err != nil)
	// Output:
	// same key both ends: true
	// directions differ: true
	// AES_CM_128_HMAC_SHA1_80 key [redacted]
	// B got "hello"
	// replay refused: true
}

// An SDES offer/answer: Alice offers two suites, Bob accepts the first one
// he supports, and each ends up with a send and a receive context.
func ExampleAnswer() {
	offer, err := srtpkeys.NewOffer(nil, srtpkeys.AEADAES256GCM, srtpkeys.AES128CM_SHA1_80)
	if err != nil {
		log.Fatal(err)
	}
	lines, err := offer.Attributes() // "a=crypto:1 …" lines for the SDP media section
	if err != nil {
		log.Fatal(err)
	}

	answer, bob, err := srtpkeys.Answer(lines, &srtpkeys.AnswerOptions{
		Suites: []srtpkeys.Suite{srtpkeys.AES128CM_SHA1_80},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("Bob answers:", answer) // String redacts the key
	reply, err := answer.Attribute()
	if err != nil {
		log.Fatal(err)
	}

	alice, err := offer.Accept(reply)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("suite:", alice.Suite, "tag:", alice.Tag)
	fmt.Println("Alice sends with what Bob receives with:", alice.Local.Equal(bob.Remote))

	send, err := alice.SendContext()
	if err != nil {
		log.Fatal(err)
	}
	recv, err := bob.ReceiveContext()
	if err != nil {
		log.Fatal(err)
	}
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 7, SSRC: 42}, Payload: []byte{1, 2, 3}}).Marshal()
	pkt, _ := send.EncryptRTP(nil, raw, nil)
	plain, err := recv.DecryptRTP(nil, pkt, nil)
	fmt.Println("Bob decrypts:", err == nil, plain[12:])
	// Output:
	// Bob answers: a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:[redacted]
	// suite: AES_CM_128_HMAC_SHA1_80 tag: 2
	// Alice sends with what Bob receives with: true
	// Bob decrypts: true [1 2 3]
}

// Session keys for the RFC 3711 appendix B.3 master key.
func ExampleNewDeriver() {
	key, _ := hex.DecodeString("E1F97A0D3E018BE0D64FA32C06DE4139")
	salt, _ := hex.DecodeString("0EC675AD498AFEEBB6960B3AABE6")
	master, err := srtpkeys.NewMasterKey(srtpkeys.AES128CM_SHA1_80, key, salt)
	if err != nil {
		log.Fatal(err)
	}
	d, err := srtpkeys.NewDeriver(master, 0) // KDR 0: derive once
	if err != nil {
		log.Fatal(err)
	}
	s, err := d.SRTP(0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("key  %x\nsalt %x\nauth %x\n", s.Key(), s.Salt(), s.Auth())
	// Output:
	// key  c61e7a93744f39ee10734afe3ff7a087
	// salt 30cbbc08863d8c85d49db34a9ae1
	// auth cebe321f6ff7716b6fd4ab49af256a156d38baa4
}

// Parsing what a Microsoft Teams peer sends.
func ExampleParseCrypto() {
	c, err := srtpkeys.ParseCrypto("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^31|1:1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Tag, c.Suite)
	fmt.Println(c.Keys[0])
	fmt.Println(c)
	// Output:
	// 2 AES_CM_128_HMAC_SHA1_80
	// AES_CM_128_HMAC_SHA1_80 key [redacted] lifetime 2^31 MKI 1:1
	// a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:[redacted]|2^31|1:1
}
