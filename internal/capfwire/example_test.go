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
