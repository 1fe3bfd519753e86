package sgn

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/internal/signedfile"
	"github.com/ucsec/ucsec/internal/testkeys"
)

var vectors = []string{"sgn-sha1/SEP001122334455.cnf.xml.sgn", "sgn-sha512/SEP001122334455.cnf.xml.sgn", "enc/SEP001122334455.cnf.xml.sgn"}

func TestVectors(t *testing.T) {
	tftp, _ := testkeys.Load(t, "tftp")
	plain := testkeys.Vector(t, "SEP001122334455.cnf.xml")
	for _, name := range vectors {
		t.Run(name, func(t *testing.T) {
			data := testkeys.Vector(t, name)
			want := testkeys.ParseOutput(t, name+".parse.txt")
			f, err := Parse(data)
			require.NoError(t, err)

			assert.Equal(t, want["Version"], f.Version.String())
			assert.Equal(t, want["Header Length"], fmt.Sprintf("%d bytes", f.HeaderLength))
			assert.Equal(t, want["Signer Name"], f.SignerName)
			assert.Equal(t, want["Issuer Name"], f.IssuerName)
			assert.Equal(t, want["Serial Number"], hex.EncodeToString(f.SerialNumber.Bytes()))
			assert.Equal(t, want["Digest Algorithm"], strings.ReplaceAll(f.Hash.String(), "-", ""))
			assert.Equal(t, want["Signature"], fmt.Sprintf("%d bytes", len(f.Signature)))
			assert.Equal(t, want["Filename"], f.Filename)
			assert.Equal(t, want["Timestamp"], f.Timestamp.Format(time.DateTime))
			assert.Equal(t, 1, f.Padding)

			require.NoError(t, f.CheckSignatureFrom(tftp))
			stripped, err := Strip(data)
			require.NoError(t, err)
			if !strings.HasPrefix(name, "enc/") {
				assert.Equal(t, plain, stripped)
			}
			assert.Equal(t, f.Payload, stripped)
			assert.Equal(t, data[len(data)-len(f.Payload):], f.SignedBytes()[len(f.RawTBS):])

			again, err := f.marshal()
			require.NoError(t, err)
			assert.Equal(t, data, again)
		})
	}
}

// TestBitFlips flips every bit of the signed bytes (and of the signature)
// of a vector: each change must fail, as ErrVerification or, where the
// change breaks the layout or names another signer, as another error.
func TestBitFlips(t *testing.T) {
	tftp, _ := testkeys.Load(t, "tftp")
	data := testkeys.Vector(t, vectors[0])
	for i := range data {
		for bit := range 8 {
			b := bytes.Clone(data)
			b[i] ^= 1 << bit
			f, err := Parse(b)
			if err == nil {
				err = f.CheckSignatureFrom(tftp)
			}
			if err == nil {
				t.Fatalf("flip of byte %d bit %d still verifies", i, bit)
			}
			if !errors.Is(err, ErrVerification) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrWrongSigner) {
				t.Fatalf("flip of byte %d bit %d: unexpected error %v", i, bit, err)
			}
		}
	}
}

func TestCheckSignatureFromWrongSigner(t *testing.T) {
	sast, _ := testkeys.Load(t, "sast")
	ec, _ := testkeys.Load(t, "tftp-ec-p384")
	tftp, _ := testkeys.Load(t, "tftp")
	f, err := Parse(testkeys.Vector(t, vectors[0]))
	require.NoError(t, err)
	assert.ErrorIs(t, f.CheckSignatureFrom(sast), ErrWrongSigner)
	assert.ErrorIs(t, f.CheckSignatureFrom(ec), ErrWrongSigner)
	assert.ErrorIs(t, f.CheckSignature(sast.PublicKey), ErrVerification)
	assert.ErrorIs(t, f.CheckSignature(ec.PublicKey), ErrUnsupportedAlgorithm)

	// A certificate that the header names (same serial, subject, issuer)
	// but with another key: the identity matches, the signature does not.
	impostor := *tftp
	impostor.PublicKey = sast.PublicKey
	assert.ErrorIs(t, f.CheckSignatureFrom(&impostor), ErrVerification)

	assert.Error(t, new(File).CheckSignatureFrom(tftp))
}

// hsmSigner exposes nothing but crypto.Signer, as a PKCS#11 key would.
type hsmSigner struct{ crypto.Signer }

// messageSigner records that it was given the whole message.
type messageSigner struct {
	crypto.Signer
	got []byte
}

func (m *messageSigner) SignMessage(rand_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	m.got = bytes.Clone(msg)
	return crypto.SignMessage(m.Signer, rand_, msg, opts)
}

func TestSignRoundTrip(t *testing.T) {
	cert, key := testkeys.Load(t, "tftp")
	payload := testkeys.Vector(t, "SEP001122334455.cnf.xml")
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, hash := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA512} {
		for _, omit := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/omit=%v", hash, omit), func(t *testing.T) {
				opts := SignOptions{Filename: "SEP001122334455.cnf.xml.sgn", Hash: hash, Time: func() time.Time { return at }, OmitTimestamp: omit}
				out, err := Sign(rand.Reader, payload, cert, hsmSigner{key}, opts)
				require.NoError(t, err)
				again, err := Sign(rand.Reader, payload, cert, key, opts)
				require.NoError(t, err)
				assert.Equal(t, out, again, "same inputs, same bytes")

				f, err := Parse(out)
				require.NoError(t, err)
				require.NoError(t, f.CheckSignatureFrom(cert))
				assert.Equal(t, hash, f.Hash)
				assert.Equal(t, Version{1, 0}, f.Version)
				assert.Equal(t, "CN=Asterisk;O=Asterisk;OU=Asterisk", f.SignerName)
				assert.Equal(t, cert.SerialNumber, f.SerialNumber)
				assert.Equal(t, opts.Filename, f.Filename)
				assert.Equal(t, payload, f.Payload)
				assert.Zero(t, f.HeaderLength%4)
				if omit {
					assert.True(t, f.Timestamp.IsZero())
				} else {
					assert.True(t, at.Equal(f.Timestamp))
				}
			})
		}
	}
}

// TestSignExtra writes extra header elements after the timestamp: they
// parse back in order, and the signature covers them.
func TestSignExtra(t *testing.T) {
	cert, key := testkeys.Load(t, "tftp")
	extra := []Element{{Tag: 0x10, Value: []byte{0x11, 0, 1, 7}}, {Tag: 0x1A, Value: []byte{1}}, {Tag: 0x30}}
	out, err := Sign(nil, []byte("payload"), cert, key, SignOptions{Filename: "a.enc.sgn", Hash: crypto.SHA1, Version: Version{2, 0}, Extra: extra})
	require.NoError(t, err)
	f, err := Parse(out)
	require.NoError(t, err)
	require.NoError(t, f.CheckSignatureFrom(cert))
	assert.Equal(t, []Element{extra[0], extra[1], {Tag: 0x30, Value: []byte{}}}, f.Extra)
	at := bytes.Index(out, []byte{0x1A, 0, 1, 1})
	require.Positive(t, at)
	out[at+3] = 3
	f, err = Parse(out)
	require.NoError(t, err)
	assert.ErrorIs(t, f.CheckSignatureFrom(cert), ErrVerification)
}

func TestSignMessageSigner(t *testing.T) {
	cert, key := testkeys.Load(t, "tftp")
	ms := &messageSigner{Signer: key}
	out, err := Sign(nil, []byte("hello"), cert, ms, SignOptions{Filename: "a.sgn", Hash: crypto.SHA512, Version: Version{1, 1}})
	require.NoError(t, err)
	f, err := Parse(out)
	require.NoError(t, err)
	require.NoError(t, f.CheckSignatureFrom(cert))
	assert.Equal(t, f.SignedBytes(), ms.got)
	assert.Equal(t, Version{1, 1}, f.Version)
}

func TestSignErrors(t *testing.T) {
	cert, key := testkeys.Load(t, "tftp")
	sast, sastKey := testkeys.Load(t, "sast")
	ec, ecKey := testkeys.Load(t, "tftp-ec-p384")
	ok := SignOptions{Filename: "a.sgn", Hash: crypto.SHA1}
	tests := []struct {
		name string
		cert *x509.Certificate
		key  crypto.Signer
		opts SignOptions
		is   error
	}{
		{"no filename", cert, key, SignOptions{Hash: crypto.SHA1}, nil},
		{"no hash", cert, key, SignOptions{Filename: "a.sgn"}, ErrUnsupportedAlgorithm},
		{"md5", cert, key, SignOptions{Filename: "a.sgn", Hash: crypto.MD5}, ErrUnsupportedAlgorithm},
		{"key of another cert", sast, key, ok, nil},
		{"cert of another key", cert, sastKey, ok, nil},
		{"ec signer", ec, ecKey, ok, ErrUnsupportedAlgorithm},
		{"no key", cert, nil, ok, nil},
		{"no cert", nil, key, ok, nil},
		{"NUL in filename", cert, key, SignOptions{Filename: "a\x00.sgn", Hash: crypto.SHA1}, nil},
		{"timestamp before 1970", cert, key, SignOptions{Filename: "a.sgn", Hash: crypto.SHA1, Time: func() time.Time { return time.Unix(-1, 0) }}, nil},
		{"extra with a header tag", cert, key, SignOptions{Filename: "a.sgn", Hash: crypto.SHA1, Extra: []Element{{Tag: 0x0E, Value: []byte("b\x00")}}}, nil},
		{"extra padding", cert, key, SignOptions{Filename: "a.sgn", Hash: crypto.SHA1, Extra: []Element{{Tag: 0x0D}}}, nil},
		{"extra too long", cert, key, SignOptions{Filename: "a.sgn", Hash: crypto.SHA1, Extra: []Element{{Tag: 0x20, Value: make([]byte, 70000)}}}, nil},
	}
	_ = sast
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Sign(rand.Reader, []byte("x"), tt.cert, tt.key, tt.opts)
			require.Error(t, err)
			assert.Nil(t, out)
			assert.True(t, strings.HasPrefix(err.Error(), "sgn: "), err.Error())
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	data := testkeys.Vector(t, vectors[0])
	for name, in := range map[string][]byte{
		"empty":          nil,
		"truncated":      data[:200],
		"not a sgn file": []byte("<?xml version=\"1.0\"?><device/>"),
	} {
		t.Run(name, func(t *testing.T) {
			f, err := Parse(in)
			assert.Nil(t, f)
			assert.ErrorIs(t, err, ErrMalformed)
			var pe *ParseError
			assert.ErrorAs(t, err, &pe)
			assert.True(t, strings.HasPrefix(err.Error(), "sgn: "), err.Error())
			_, err = Strip(in)
			assert.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestStrippedName(t *testing.T) {
	for in, want := range map[string]string{
		"SEP001122334455.cnf.xml.sgn": "SEP001122334455.cnf.xml",
		"cmterm-7900.cop.sha512":      "cmterm-7900.cop",
		"dsp.sbn":                     "dsp.sbn.stripped",
		".sgn":                        ".sgn.stripped",
		"dir/a.xml.sgn":               "dir/a.xml",
	} {
		assert.Equal(t, want, StrippedName(in), in)
	}
}

// TestFirmwareLayouts parses headers shaped like Cisco's firmware files
// (.sbn, .loads: version 1.1, placeholder signer, signer info in Cisco's
// order, no timestamp) and trust-list style ones (1.2 with a signer
// version), with every padding length, and verifies them with the key.
func TestFirmwareLayouts(t *testing.T) {
	_, key := testkeys.Load(t, "tftp")
	sv := [2]uint8{1, 0}
	for _, tc := range []struct {
		name string
		h    rawHeader
	}{
		{"sbn", rawHeader{Version: [2]uint8{1, 1}, Filename: "dsp11.9-4-2ES9.sbn"}},
		{"loads", rawHeader{Version: [2]uint8{1, 1}, Filename: "SIP11.9-4-2SR1-1S.loads"}},
		{"loads, 1 pad", rawHeader{Version: [2]uint8{1, 1}, Filename: "SIP11.9-4-2SR1-1S.loads1"}},
		{"loads, 2 pads", rawHeader{Version: [2]uint8{1, 1}, Filename: "SIP11.9-4-2SR1-1S.loads12"}},
		{"loads, 3 pads", rawHeader{Version: [2]uint8{1, 1}, Filename: "SIP11.9-4-2SR1-1S.loads123"}},
		{"1.2 with signer version", rawHeader{Version: [2]uint8{1, 2}, Filename: "x.sgn", SignerVersion: &sv, Timestamp: time.Unix(1e9, 0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			h.SignerName, h.IssuerName = "CN=someSigner;OU=someOrgUnit;O=someOrg", "CN=someCA;OU=someOrgUnit;O=someOrg"
			h.SerialNumber, _ = hex.DecodeString("1234567890abcdef")
			h.HashCode = signedfile.HashSHA1
			data, err := signRaw(nil, &h, []byte("CNU_File_Archive_3.0"), key)
			require.NoError(t, err)

			f, err := Parse(data)
			require.NoError(t, err)
			assert.Equal(t, h.Filename, f.Filename)
			assert.Equal(t, Version(h.Version), f.Version)
			assert.Equal(t, "1234567890abcdef", f.SerialNumber.Text(16))
			assert.Equal(t, []byte("CNU_File_Archive_3.0"), f.Payload)
			assert.Equal(t, h.Padding, f.Padding)
			require.NoError(t, f.CheckSignature(key.Public()))
			again, err := f.marshal()
			require.NoError(t, err)
			assert.Equal(t, data, again)
		})
	}
}

// failingSigner is a token that refuses to sign.
type failingSigner struct{ crypto.Signer }

var errToken = errors.New("token: PIN locked")

func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return nil, errToken }

func TestSignerErrorKept(t *testing.T) {
	cert, key := testkeys.Load(t, "tftp")
	_, err := Sign(nil, []byte("x"), cert, failingSigner{key}, SignOptions{Filename: "a.sgn", Hash: crypto.SHA1})
	require.ErrorIs(t, err, errToken)
	assert.True(t, strings.HasPrefix(err.Error(), "sgn: signing failed: "), err.Error())
}
