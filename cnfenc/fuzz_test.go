package cnfenc

import (
	"bytes"
	"crypto"
	"errors"
	"testing"

	"github.com/ucsec/ucsec/internal/testkeys"
	"github.com/ucsec/ucsec/sgn"
)

// FuzzDecrypt checks that Parse never panics and reports layout errors as
// *sgn.ParseError, that nothing decrypts without the signature of its
// signer, and, with the signature check skipped so that fuzzed files reach
// decryption, that a decryption either fails or returns plaintext
// matching the file's digest: never unchecked plaintext.
func FuzzDecrypt(f *testing.F) {
	k := loadKeys(f)
	manual := testKey(0x42)
	f.Add(testkeys.Vector(f, vectorName))
	f.Add(k.encrypt(f, []byte("<device/>"), crypto.SHA512))
	m, err := EncryptManualKey(nil, []byte("<device/>"), manual, k.tftp, k.tftpKey, EncryptOptions{DeviceName: device, Hash: crypto.SHA1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(m)
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			var pe *sgn.ParseError
			if file != nil || !errors.Is(err, sgn.ErrMalformed) || !errors.As(err, &pe) {
				t.Fatalf("bad error %v (file %v)", err, file)
			}
			return
		}
		if plain, err := file.Decrypt(k.other, k.phoneKey); err == nil {
			t.Fatalf("decrypted %q without its signer's signature", plain)
		}
		check := func(plain []byte, err error) {
			if err != nil {
				if plain != nil {
					t.Fatal("plaintext returned with an error")
				}
				return
			}
			d := file.enc.hash.New()
			d.Write(plain)
			if !bytes.Equal(d.Sum(nil), file.enc.digest) {
				t.Fatal("returned plaintext that does not match the digest")
			}
		}
		if file.WrappedKey != nil {
			check(file.decrypt(k.phoneKey))
		} else {
			check(file.decryptManualKey(manual))
		}
	})
}

// FuzzExcludeDigestCredentials checks that the result is the input with
// whole elements cut out: well formed, without credentials, and the same
// as the input when nothing was removed.
func FuzzExcludeDigestCredentials(f *testing.F) {
	f.Add([]byte(lineConfig))
	f.Add(testkeys.Vector(f, plainName))
	f.Add([]byte("<device><authName/><x><authPassword a='>'>p</authPassword></x></device>"))
	f.Add([]byte(`<device xmlns="urn:x"><authName>1001</authName><line xmlns=""><authPassword/></line></device>`))
	f.Add([]byte(`<x:device xmlns:x="urn:x"><x:authName>1001</x:authName><y:authPassword>p</y:authPassword></x:device>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, n, err := ExcludeDigestCredentials(data)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			return
		}
		if n == 0 && !bytes.Equal(out, data) {
			t.Fatal("changed a configuration without credentials")
		}
		if len(out) > len(data) || (n > 0 && len(out) == len(data)) {
			t.Fatalf("removed %d elements but the size went from %d to %d", n, len(data), len(out))
		}
		again, n2, err := ExcludeDigestCredentials(out)
		if err != nil || n2 != 0 || !bytes.Equal(again, out) {
			t.Fatalf("result is not clean: %d more elements, error %v", n2, err)
		}
	})
}

// FuzzShortConfig checks that ShortConfig and ParseShortConfig never panic,
// that their errors wrap ErrConfig, and that a short configuration built
// from any configuration they accept reads back as encrypted, for the
// certificate it names.
func FuzzShortConfig(f *testing.F) {
	k := loadKeys(f)
	f.Add(testkeys.Vector(f, plainName))
	f.Add([]byte("<device><capfList><capf/></capfList><certHash>x</certHash></device>"))
	f.Fuzz(func(t *testing.T, full []byte) {
		if _, err := ParseShortConfig(full); err != nil && !errors.Is(err, ErrConfig) {
			t.Fatalf("ParseShortConfig error %v does not wrap ErrConfig", err)
		}
		short, err := ShortConfig(full, k.phone)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("ShortConfig error %v does not wrap ErrConfig", err)
			}
			return
		}
		info, err := ParseShortConfig(short)
		if err != nil || !info.EncrConfig || info.FullConfig || !info.CertHashMatches(k.phone) {
			t.Fatalf("short config does not read back: %+v, %v\n%s", info, err, short)
		}
	})
}
