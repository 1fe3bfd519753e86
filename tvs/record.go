package tvs

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/ucsec/ucsec/ctl"
)

// The record format: what [Put] writes to a [Store] and [Lookup] reads.
// Version 1 is, in this order:
//
//	1 byte    format version, 1
//	32 bytes  the SHA-256 hash of the certificate's DER: the key the
//	          record is held under, which names the record
//	4 bytes   TTL in seconds, big-endian; 0 for the server's default
//	1 byte    number of roles, n (at least 1)
//	n bytes   the role numbers (ctl.Role), one byte each, ascending
//	DER       the certificate: one DER SEQUENCE
//	fields    zero or more, each a tag (1 byte), a length (2 bytes,
//	          big-endian) and a value; tags ascending, none twice
//
// Version 1 defines no fields: they are room for later versions to add
// what an entry does not have yet. A reader skips a field whose tag it
// does not know if the tag is below 0x80 (a field that may be ignored),
// and refuses the record ([ErrStoreVersion]) if it is 0x80 or above (a
// field that changes the record's meaning, which only a reader that
// knows it may act on). A change that cannot be made that way gets a new
// format version, which older readers refuse. A record is at most
// [MaxRecordSize] bytes long.
//
// The hash in the record lets a lookup, the hot path, check that the
// store gave the record of the key asked for with a comparison of 32
// bytes; hashing the certificate again would add a tenth to its cost,
// which is parsing the certificate. [Entries] hashes each certificate,
// and the [Server] compares the certificate with the one the phone sent.
const recordVersion = 1

// recordHead is the length of a record before its roles.
const recordHead = 1 + sha256.Size + 4 + 1

// criticalField is the lowest tag of a field that a reader must know.
const criticalField = 0x80

// marshal returns the record as a Store keeps it.
func (r *record) marshal() []byte {
	v := make([]byte, 0, recordHead+len(r.roles)+len(r.der))
	v = append(v, recordVersion)
	v = append(v, r.sum[:]...)
	v = binary.BigEndian.AppendUint32(v, uint32(r.ttl/time.Second))
	v = append(v, byte(len(r.roles)))
	for _, role := range r.roles {
		v = append(v, byte(role)) // checkRoles allows only roles < 256
	}
	return append(v, r.der...)
}

// knownRoles[r] is knownRole(r), for the roles a record can hold.
var knownRoles = func() (known [256]bool) {
	for r := range known {
		known[r] = knownRole(ctl.Role(r))
	}
	return known
}()

// parseRecord checks the record v held under sum and returns it as an
// entry; with hash, it also checks that the certificate has the hash
// sum. v must not be used by anything else: the entry's certificate
// shares its memory.
func parseRecord(sum [32]byte, v []byte, hash bool) (*Entry, error) {
	if len(v) == 0 {
		return nil, corruptRecord(sum, "empty")
	}
	switch version := v[0]; {
	case version > recordVersion:
		return nil, fmt.Errorf("%w: record %x has format version %d, this package reads version %d (a newer version wrote it)", ErrStoreVersion, sum, version, recordVersion)
	case version != recordVersion:
		return nil, corruptRecord(sum, "format version %d", version)
	}
	s := cryptobyte.String(v[1:])
	var named []byte
	var ttl uint32
	var roleBytes []byte
	if !s.ReadBytes(&named, sha256.Size) || !s.ReadUint32(&ttl) || !s.ReadUint8LengthPrefixed((*cryptobyte.String)(&roleBytes)) {
		return nil, corruptRecord(sum, "truncated (%d bytes)", len(v))
	}
	if [32]byte(named) != sum {
		return nil, corruptRecord(sum, "is the record of %x", named)
	}
	if ttl > uint32(MaxTTL/time.Second) {
		return nil, corruptRecord(sum, "TTL %d", ttl)
	}
	if len(roleBytes) == 0 {
		return nil, corruptRecord(sum, "no roles")
	}
	roles := make([]ctl.Role, len(roleBytes))
	for i, b := range roleBytes {
		if !knownRoles[b] || i > 0 && b <= roleBytes[i-1] {
			return nil, corruptRecord(sum, "roles %v", roleBytes)
		}
		roles[i] = ctl.Role(b)
	}
	var der cryptobyte.String
	if !s.ReadASN1Element(&der, asn1.SEQUENCE) {
		return nil, corruptRecord(sum, "no certificate")
	}
	for last := -1; !s.Empty(); {
		var tag uint8
		var value cryptobyte.String
		if !s.ReadUint8(&tag) || !s.ReadUint16LengthPrefixed(&value) {
			return nil, corruptRecord(sum, "malformed field after the certificate")
		}
		if int(tag) <= last {
			return nil, corruptRecord(sum, "field %#x out of order", tag)
		}
		last = int(tag)
		// Version 1 knows no field: skip those that may be ignored.
		if tag >= criticalField {
			return nil, fmt.Errorf("%w: record %x has field %#x, which this package does not know and must not ignore (a newer version wrote it)", ErrStoreVersion, sum, tag)
		}
	}
	if hash {
		if got := sha256.Sum256(der); got != sum {
			return nil, corruptRecord(sum, "holds a certificate with another hash, %x", got)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, corruptRecord(sum, "certificate does not parse: %v", err)
	}
	return &Entry{Certificate: cert, Roles: roles, TTL: time.Duration(ttl) * time.Second}, nil
}

// corruptRecord returns the error of a record held under sum that is not
// what this package writes.
func corruptRecord(sum [32]byte, format string, args ...any) error {
	return fmt.Errorf("%w: record %x: %s", ErrCorrupt, sum, fmt.Sprintf(format, args...))
}
