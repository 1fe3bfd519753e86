//go:build !cgo

package pkcs11

// open fails: without cgo no PKCS #11 module can be loaded.
func open(u *URI, opts *Options) (Key, error) {
	if _, _, _, err := openChecks(u, opts); err != nil {
		return nil, err
	}
	return nil, ErrNoTokenSupport
}
