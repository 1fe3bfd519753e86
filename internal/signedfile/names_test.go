package signedfile

import (
	"testing"

	"github.com/ucsec/ucsec/internal/testkeys"
)

func TestNames(t *testing.T) {
	cert, _ := testkeys.Load(t, "tftp")
	got, err := FormatName(cert.RawSubject)
	if err != nil || got != "CN=Asterisk;O=Asterisk;OU=Asterisk" {
		t.Fatalf("FormatName = %q, %v", got, err)
	}
	for _, s := range []string{
		"CN=Asterisk;O=Asterisk;OU=Asterisk",
		"CN=Asterisk,O=Asterisk,OU=Asterisk",
		"CN=Asterisk; O=Asterisk; OU=Asterisk",
		"cn=\"Asterisk\";o=Asterisk;ou=Asterisk",
		"OU=Asterisk,O=Asterisk,CN=Asterisk",
		"commonName=Asterisk,O=Asterisk,OU=Asterisk",
	} {
		if !NamesEqual(s, cert.RawSubject) {
			t.Errorf("NamesEqual(%q) = false", s)
		}
	}
	for _, s := range []string{"CN=Asterisk", "CN=Asterisk;O=Asterisk;OU=Other", "O=Asterisk,CN=Asterisk,OU=Asterisk", ""} {
		if NamesEqual(s, cert.RawSubject) {
			t.Errorf("NamesEqual(%q) = true", s)
		}
	}
	if NamesEqual("CN=x", []byte{0x30}) {
		t.Error("bad DER accepted")
	}
}
