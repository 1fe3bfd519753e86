package ascii

import "testing"

func TestEqualFold(t *testing.T) {
	for _, c := range []struct {
		s, t string
		want bool
	}{
		{"", "", true},
		{"Encrypted", "eNCRYPTED", true},
		{"AES_CM_128", "aes_cm_128", true},
		{"a", "ab", false},
		{"AEſ", "AES", false}, // U+017F folds to s in Unicode, not here
		{"K", "\u212a", false},
		{"[", "{", false}, // 0x5B and 0x7B differ by 0x20 but are not letters
		{"@", "`", false},
	} {
		if got := EqualFold(c.s, c.t); got != c.want {
			t.Errorf("EqualFold(%q, %q) = %v", c.s, c.t, got)
		}
	}
}
