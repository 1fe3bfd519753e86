package pkcs11

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want URI
		out  string // String(), if not in
	}{
		// The examples of RFC 7512, section 3.
		{in: "pkcs11:", want: URI{}},
		{in: "pkcs11:object=my-pubkey;type=public", want: URI{Object: "my-pubkey", Type: "public"}, out: "pkcs11:type=public;object=my-pubkey"},
		{in: "pkcs11:object=my-key;type=private?pin-source=file:/etc/token",
			want: URI{Object: "my-key", Type: "private", PINSource: "file:/etc/token"},
			out:  "pkcs11:type=private;object=my-key?pin-source=file:/etc/token"},
		{in: "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BE%2D%C1%B3%89%0C%9A%F5%8F%AB%10;serial=?pin-source=file:/etc/token_pin",
			want: URI{Token: "The Software PKCS#11 Softtoken", Manufacturer: "Snake Oil, Inc.", Model: "1.0", Object: "my-certificate", Type: "cert",
				ID: []byte{0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbe, 0x2d, 0xc1, 0xb3, 0x89, 0x0c, 0x9a, 0xf5, 0x8f, 0xab, 0x10}, PINSource: "file:/etc/token_pin"},
			out: "pkcs11:manufacturer=Snake%20Oil,%20Inc.;model=1.0;token=The%20Software%20PKCS%2311%20Softtoken;type=cert;object=my-certificate;id=%69%95%3E%5C%F4%BE%2D%C1%B3%89%0C%9A%F5%8F%AB%10?pin-source=file:/etc/token_pin"},
		{in: "pkcs11:object=my-sign-key;type=private?module-name=mypkcs11",
			want: URI{Object: "my-sign-key", Type: "private", ModuleName: "mypkcs11"},
			out:  "pkcs11:type=private;object=my-sign-key?module-name=mypkcs11"},
		{in: "pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1",
			want: URI{Object: "my-sign-key", Type: "private", ModulePath: "/mnt/libmypkcs11.so.1"},
			out:  "pkcs11:type=private;object=my-sign-key?module-path=/mnt/libmypkcs11.so.1"},
		{in: "pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin",
			want: URI{Token: "Software PKCS#11 softtoken", Manufacturer: "Snake Oil, Inc.", PINValue: "the-pin"},
			out:  "pkcs11:manufacturer=Snake%20Oil,%20Inc.;token=Software%20PKCS%2311%20softtoken?pin-value=the-pin"},
		{in: "pkcs11:slot-description=Sun%20Metaslot", want: URI{SlotDescription: "Sun Metaslot"}},
		{in: "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23",
			want: URI{LibraryManufacturer: "Snake Oil, Inc.", LibraryDescription: "Soft Token Library", LibraryVersion: "1.23"}},
		{in: "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
			want: URI{Token: "A name with a substring %;", Object: "my-certificate", Type: "cert"},
			out:  "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;type=cert;object=my-certificate"},
		{in: "pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert",
			want: URI{Token: "Name with a small A with acute: \u00e1", Object: "my-certificate", Type: "cert"},
			out:  "pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;type=cert;object=my-certificate"},
		{in: "pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token_pin&vendor-bbb=value-b"}, // vendor attributes: refused below
		{in: "pkcs11:slot-manufacturer=Snake%20Oil,%20Inc.;slot-id=42", want: URI{SlotManufacturer: "Snake Oil, Inc.", SlotID: 42, HasSlotID: true}},
		// Ours.
		{in: "PKCS11:token=ucsec;object=sast?module-path=/usr/lib/softhsm/libsofthsm2.so",
			want: URI{Token: "ucsec", Object: "sast", ModulePath: "/usr/lib/softhsm/libsofthsm2.so"},
			out:  "pkcs11:token=ucsec;object=sast?module-path=/usr/lib/softhsm/libsofthsm2.so"},
		{in: "pkcs11:id=%01?module-path=/a&&pin-source=/p", want: URI{ID: []byte{1}, ModulePath: "/a", PINSource: "/p"}, out: "pkcs11:id=%01?module-path=/a&pin-source=/p"},
		{in: "pkcs11:token=;id=?", want: URI{}, out: "pkcs11:"},
	} {
		u, err := ParseURI(tt.in)
		if strings.Contains(tt.in, "vendor-") {
			if !errors.Is(err, ErrMalformedURI) || !strings.Contains(err.Error(), `unknown path attribute "vendor-aaa"`) {
				t.Errorf("ParseURI(%q): %v, want the vendor attribute refused", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURI(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(*u, tt.want) {
			t.Errorf("ParseURI(%q) = %+v, want %+v", tt.in, *u, tt.want)
		}
		out := tt.out
		if out == "" {
			out = tt.in
		}
		if got := u.String(); got != out {
			t.Errorf("ParseURI(%q).String() = %q, want %q", tt.in, got, out)
		}
	}
}

func TestParseURIErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "does not start with"},
		{"pkcs1:token=a", "does not start with"},
		{"/path/to/key.pem", "does not start with"},
		{"pkcs11:token=a#frag", "fragment"},
		{"pkcs11:token=a;;object=b", "empty path attribute"},
		{"pkcs11:token=a;", "empty path attribute"},
		{"pkcs11:token", `"token" has no "="`},
		{"pkcs11:token=a;token=b", "token twice"},
		{"pkcs11:object=%zz", "object: malformed percent-encoding"},
		{"pkcs11:object=%4", "malformed percent-encoding"},
		{"pkcs11:type=secret", `unknown type "secret"`},
		{"pkcs11:slot-id=-1", "not a decimal number"},
		{"pkcs11:slot-id=+1", "not a decimal number"},
		{"pkcs11:slot-id=99999999999999999999999", "not a decimal number"},
		{"pkcs11:library-version=1.2.3", "not M or M.N"},
		{"pkcs11:library-version=256", "not M or M.N"},
		{"pkcs11:x-vendor=1", `unknown path attribute "x-vendor"`},
		{"pkcs11:?x-vendor=1", `unknown query attribute "x-vendor"`},
		{"pkcs11:module-path=/a", "module-path belongs in the query"},
		{"pkcs11:?token=a", "token belongs in the path"},
		{"pkcs11:?pin-source=/a&pin-value=s3cr3tpin", "both pin-source and pin-value"},
		{"pkcs11:?pin-value=%zzs3cr3tpin", "pin-value: malformed percent-encoding"},
		{"pkcs11:?pin-value=1&pin-value=2", "pin-value twice"},
		{"pkcs11:object=" + strings.Repeat("a", maxURILength), "longer than"},
	} {
		_, err := ParseURI(tt.in)
		if !errors.Is(err, ErrMalformedURI) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseURI(%q): %v, want ErrMalformedURI and %q", tt.in, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3tpin") {
			t.Errorf("ParseURI(%q): the message shows the pin-value: %v", tt.in, err)
		}
	}
}

func TestRedacted(t *testing.T) {
	u, err := ParseURI("pkcs11:token=ucsec?pin-value=1234&module-path=/m.so")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.Redacted(), "pkcs11:token=ucsec?module-path=/m.so&pin-value=xxxxx"; got != want {
		t.Errorf("Redacted() = %q, want %q", got, want)
	}
	if got := redactRaw("pkcs11:token=a;bad?pin-value=1234"); strings.Contains(got, "1234") {
		t.Errorf("redactRaw shows the PIN: %q", got)
	}
}

func TestIsURI(t *testing.T) {
	for s, want := range map[string]bool{"pkcs11:": true, "PKCS11:token=a": true, "pkcs11": false, "key.pem": false, "./pkcs11:x": false} {
		if IsURI(s) != want {
			t.Errorf("IsURI(%q) = %v", s, !want)
		}
	}
}

func TestPINSource(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pinFile := write("pin", "12 34\r\nsecond line\n")
	for _, tt := range []struct {
		src, want, err string
	}{
		{src: pinFile, want: "12 34"},
		{src: "file://" + pinFile, want: "12 34"},
		{src: "file:" + pinFile, want: "12 34"},
		{src: "file://localhost" + pinFile, want: "12 34"},
		{src: write("bare", "5678"), want: "5678"},
		{src: "file://host" + pinFile, err: "use file:///path"},
		{src: "https://example.com/pin", err: "only file: URIs"},
		{src: filepath.Join(dir, "nosuch"), err: "no such file"},
		{src: write("empty", "\n"), err: "empty"},
		{src: write("long", strings.Repeat("1", maxPINLength+1)), err: "longer than"},
	} {
		got, err := readPINSource(tt.src)
		switch {
		case tt.err != "" && (err == nil || !errors.Is(err, ErrPINSource) || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("readPINSource(%q): %v, want %q", tt.src, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("readPINSource(%q) = %q, %v; want %q", tt.src, got, err, tt.want)
		}
	}
	// Where the PIN comes from: pin-source, an allowed pin-value, Options.PIN.
	for _, tt := range []struct {
		uri  string
		opts Options
		want string
		err  error
	}{
		{"pkcs11:?pin-source=" + pinFile, Options{PIN: "env"}, "12 34", nil},
		{"pkcs11:?pin-value=v", Options{PIN: "env"}, "", ErrPINValue},
		{"pkcs11:?pin-value=v", Options{PIN: "env", AllowPINValue: true}, "v", nil},
		{"pkcs11:", Options{PIN: "env"}, "env", nil},
		{"pkcs11:", Options{}, "", nil},
	} {
		u, err := ParseURI(tt.uri)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := pin(u, &tt.opts)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("pin(%q, %+v) = %q, %v; want %q, %v", tt.uri, tt.opts, got, err, tt.want, tt.err)
		}
	}
}

func TestFindModule(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "libfoo.so"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := findModule("foo", []string{"/nonexistent", dir}); err != nil || p != filepath.Join(dir, "libfoo.so") {
		t.Errorf("findModule(foo) = %q, %v", p, err)
	}
	if _, err := findModule("../foo", []string{dir}); !errors.Is(err, ErrMalformedURI) {
		t.Errorf("findModule(../foo): %v, want ErrMalformedURI", err)
	}
	u := &URI{ModulePath: "/a", ModuleName: "b"}
	if _, err := modulePath(u, &Options{}); !errors.Is(err, ErrMalformedURI) {
		t.Errorf("module-path and module-name: %v", err)
	}
}

// FuzzParseURI checks that ParseURI never panics, that what it accepts
// String writes back to the same URI, and that a message never quotes a
// pin-value.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"pkcs11:",
		"pkcs11:token=ucsec;object=sast?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/run/pin",
		"pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;id=%69%95%3E;type=cert;serial=?pin-value=1234",
		"pkcs11:slot-id=42;library-version=1.23;slot-description=a%3Bb?module-name=softhsm2",
		"pkcs11:object=a;;b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedURI) {
				t.Fatalf("ParseURI(%q): %v does not wrap ErrMalformedURI", s, err)
			}
			return
		}
		if u.PINValue != "" && !strings.HasSuffix(u.Redacted(), "pin-value=xxxxx") {
			t.Fatalf("Redacted() shows the pin-value: %q", u.Redacted())
		}
		again, err := ParseURI(u.String())
		if err != nil {
			t.Fatalf("ParseURI(%q) ok, but its String %q: %v", s, u.String(), err)
		}
		if !reflect.DeepEqual(u, again) {
			t.Fatalf("round trip of %q through %q: %+v, then %+v", s, u.String(), u, again)
		}
		if _, err := ParseURI(u.Redacted()); err != nil {
			t.Fatalf("Redacted() %q does not parse: %v", u.Redacted(), err)
		}
		if !bytes.HasPrefix([]byte(u.String()), []byte(Scheme)) {
			t.Fatalf("String() %q", u.String())
		}
	})
}
