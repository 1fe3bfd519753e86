package signedfile

import "crypto"

// Hash algorithm codes (element 0x08, and 0x1A in encrypted files).
const (
	HashSHA1   = 1
	HashSHA256 = 2
	HashSHA512 = 3
)

// HashFromCode maps a hash code to a crypto.Hash, or 0 if it is unknown.
func HashFromCode(code uint8) crypto.Hash {
	switch code {
	case HashSHA1:
		return crypto.SHA1
	case HashSHA256:
		return crypto.SHA256
	case HashSHA512:
		return crypto.SHA512
	}
	return 0
}

// HashCode maps a crypto.Hash to its header code.
func HashCode(h crypto.Hash) (uint8, bool) {
	switch h {
	case crypto.SHA1:
		return HashSHA1, true
	case crypto.SHA256:
		return HashSHA256, true
	case crypto.SHA512:
		return HashSHA512, true
	}
	return 0, false
}
