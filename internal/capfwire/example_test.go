package capfwire_test

import (
	"bytes"
	"fmt"

	"github.com/ucsec/ucsec/internal/capfwire"
)

func Example() {
	// The server's first frame, as capfd sends it.
	req := &capfwire.Frame{Command: capfwire.CmdAuthRequest, Session: 1}
	req.AddUint8(capfwire.TagVersion, 3)
	req.AddUint8(capfwire.TagAuthType, capfwire.AuthNone)

	var conn bytes.Buffer // a TLS connection in real use
	if err := capfwire.WriteFrame(&conn, req); err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", conn.Bytes())

	f, err := capfwire.ReadFrame(&conn)
	if err != nil {
		panic(err)
	}
	v, _ := f.Uint8(capfwire.TagVersion)
	fmt.Println(f.Command, f.Session, v)
	// Output:
	// 55 01 00 00 00 01 00 08 07 00 01 03 08 00 01 00
	// AUTH_REQUEST 1 3
}

func Example_tvs() {
	// A phone asks whether a certificate is trusted, with a request id of
	// its choosing.
	req := &capfwire.TVSFrame{Version: capfwire.TVSVersion, Command: capfwire.TVSCmdVerifyRequest, ID: 0x12345678}
	if err := req.AddDeviceName("CP-7962-SEP001122334455"); err != nil {
		panic(err)
	}
	if err := req.AddCertificate([]byte{0x30, 0x03, 0x02, 0x01, 0x05}); err != nil { // the DER
		panic(err)
	}
	var conn bytes.Buffer // a TLS connection in real use
	if err := capfwire.WriteTVSFrame(&conn, req); err != nil {
		panic(err)
	}

	// The server reads it and answers: known, CAPF role, cache for an hour.
	f, err := capfwire.ReadTVSFrame(&conn)
	if err != nil {
		panic(err)
	}
	name, _ := f.DeviceName()
	fmt.Println(f.Command, name)
	resp := &capfwire.TVSFrame{Version: capfwire.TVSVersion, Command: capfwire.TVSCmdVerifyResponse, ID: f.ID}
	resp.AddUint8(capfwire.TVSTagStatus, capfwire.TVSStatusValid)
	resp.Add(capfwire.TVSTagRoles, []byte{4})
	resp.AddUint32(capfwire.TVSTagTTL, 3600)
	b, _ := resp.Marshal()
	fmt.Printf("% x\n", b)
	// Output:
	// VERIFY_REQUEST CP-7962-SEP001122334455
	// 57 01 02 00 12 34 56 78 00 0f 07 00 01 00 08 00 01 04 09 00 04 00 00 0e 10
}
