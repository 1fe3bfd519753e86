package tftpd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TFTP opcodes (RFC 1350 §5, RFC 2347).
const (
	opRRQ   = 1
	opWRQ   = 2
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6
)

// TFTP error codes (RFC 1350 §5, RFC 2347).
const (
	errCodeUndefined   = 0
	errCodeNotFound    = 1
	errCodeAccess      = 2
	errCodeDiskFull    = 3
	errCodeIllegal     = 4
	errCodeUnknownTID  = 5
	errCodeOptionsDeny = 8
)

// Bounds of what a request may hold.
const (
	maxRequest    = 1024 // bytes of a request packet that are read
	maxOptions    = 16   // options of a request that are looked at
	maxOptionText = 64   // bytes of an option name or value
)

// errMalformed is wrapped by every error about a request packet.
var errMalformed = errors.New("malformed request")

// A request is a parsed RRQ or WRQ.
type request struct {
	op   uint16
	name string   // as sent; see CleanName
	mode string   // lower case: "octet", "netascii", "mail", or what was sent
	opts []option // in the order sent, names in lower case
}

type option struct{ name, value string }

// parseRequest parses a read or write request (RFC 1350 §5, with the
// options of RFC 2347): opcode, file name, NUL, mode, NUL, then pairs of
// option name and value, each ending in NUL. The name and the mode must
// be there and end in NUL; options after maxOptions, an option without a
// value and bytes after the last NUL are ignored, as are options with an
// empty or over-long name or value.
func parseRequest(p []byte) (*request, error) {
	if len(p) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", errMalformed, len(p))
	}
	op := binary.BigEndian.Uint16(p)
	if op != opRRQ && op != opWRQ {
		return nil, fmt.Errorf("%w: opcode %d is not a request", errMalformed, op)
	}
	rest := p[2:]
	field := func() (string, bool) {
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return "", false
		}
		f := string(rest[:i])
		rest = rest[i+1:]
		return f, true
	}
	name, ok := field()
	if !ok || name == "" {
		return nil, fmt.Errorf("%w: no file name", errMalformed)
	}
	mode, ok := field()
	if !ok || mode == "" {
		return nil, fmt.Errorf("%w: no mode", errMalformed)
	}
	r := &request{op: op, name: name, mode: asciiLower(mode)}
	for range maxOptions {
		k, ok := field()
		if !ok {
			break
		}
		v, ok := field()
		if !ok {
			break
		}
		if k == "" || v == "" || len(k) > maxOptionText || len(v) > maxOptionText {
			continue
		}
		r.opts = append(r.opts, option{asciiLower(k), v})
	}
	return r, nil
}

// asciiLower returns s with ASCII letters in lower case and every other
// byte as it is: mode and option names are ASCII (RFC 1350, RFC 2347),
// and unlike strings.ToLower this keeps the length of what a client sent
// (no U+FFFD for a byte that is not UTF-8).
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// params are what a transfer was negotiated to.
type params struct {
	blksize int           // bytes of data in a full DATA packet
	timeout time.Duration // retransmission timeout; 0 means the server's
	oack    []option      // options to acknowledge; tsize's value is filled in when the size is known
}

// negotiate picks the options of a read request the server takes (RFC
// 2347): blksize (RFC 2348: 8 to 65464, cut to maxBlock), timeout (RFC
// 2349: 1 to 255 seconds, echoed) and tsize (RFC 2349: answered with the
// size). Values out of range, not decimal, or repeated options are
// ignored, as are other options; the client then gets the RFC 1350
// defaults for them.
func negotiate(opts []option, maxBlock int) params {
	p := params{blksize: 512}
	seen := map[string]bool{}
	for _, o := range opts {
		if seen[o.name] {
			continue
		}
		seen[o.name] = true
		switch o.name {
		case "blksize":
			n, ok := decimal(o.value, 8, 65464)
			if !ok {
				continue
			}
			n = min(n, maxBlock)
			p.blksize = n
			p.oack = append(p.oack, option{"blksize", strconv.Itoa(n)})
		case "timeout":
			n, ok := decimal(o.value, 1, 255)
			if !ok {
				continue
			}
			p.timeout = time.Duration(n) * time.Second
			p.oack = append(p.oack, option{"timeout", strconv.Itoa(n)})
		case "tsize":
			if _, ok := decimal(o.value, 0, 1<<62); !ok {
				continue
			}
			p.oack = append(p.oack, option{"tsize", ""})
		}
	}
	return p
}

// decimal parses s as a decimal number from lo to hi: digits only, no
// sign or space, at most 19 of them.
func decimal(s string, lo, hi int) (int, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= lo && n <= hi
}

// appendOACK appends an option acknowledgement (RFC 2347) to b, with
// tsize's value set to size.
func appendOACK(b []byte, opts []option, size int) []byte {
	b = binary.BigEndian.AppendUint16(b, opOACK)
	for _, o := range opts {
		v := o.value
		if o.name == "tsize" {
			v = strconv.Itoa(size)
		}
		b = append(b, o.name...)
		b = append(b, 0)
		b = append(b, v...)
		b = append(b, 0)
	}
	return b
}

// optionString is the options of an OACK as logged, sorted by name so
// that records compare whatever order the client sent them in.
func optionString(opts []option, size int) string {
	opts = slices.Clone(opts)
	slices.SortFunc(opts, func(a, b option) int { return strings.Compare(a.name, b.name) })
	var b strings.Builder
	for i, o := range opts {
		if i > 0 {
			b.WriteByte(' ')
		}
		v := o.value
		if o.name == "tsize" {
			v = strconv.Itoa(size)
		}
		b.WriteString(o.name + "=" + v)
	}
	return b.String()
}

// appendError appends an ERROR packet to b.
func appendError(b []byte, code uint16, msg string) []byte {
	b = binary.BigEndian.AppendUint16(b, opERROR)
	b = binary.BigEndian.AppendUint16(b, code)
	b = append(b, msg...)
	return append(b, 0)
}

// toNetascii converts data to netascii (RFC 764, as RFC 1350 uses it): LF
// becomes CR LF, and a lone CR becomes CR NUL.
func toNetascii(data []byte) []byte {
	n := 0
	for _, c := range data {
		if c == '\n' || c == '\r' {
			n++
		}
	}
	if n == 0 {
		return data
	}
	out := make([]byte, 0, len(data)+n)
	for _, c := range data {
		switch c {
		case '\n':
			out = append(out, '\r', '\n')
		case '\r':
			out = append(out, '\r', 0)
		default:
			out = append(out, c)
		}
	}
	return out
}

// printable returns at most n bytes of s with anything but printable
// ASCII replaced, for logging what a client sent.
func printable(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}
