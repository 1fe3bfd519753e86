//go:build cgo

package pkcs11

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	p11 "github.com/miekg/pkcs11"
)

// A module is a PKCS #11 library loaded into the program. One is kept
// per file for the program's life: C_Initialize may be called only once
// per process until C_Finalize, so every key of a module shares it.
type module struct {
	path  string
	ctx   *p11.Ctx
	refs  int  // open keys, and Opens under way
	owned bool // this package called C_Initialize, and calls C_Finalize
}

var modules = struct {
	sync.Mutex
	m map[string]*module
}{m: map[string]*module{}}

// acquireModule loads and initializes the module in the file path, or
// takes another reference to it.
func acquireModule(path string) (*module, error) {
	file := path
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	if real, err := filepath.EvalSymlinks(file); err == nil {
		file = real
	}
	modules.Lock()
	defer modules.Unlock()
	m := modules.m[file]
	if m == nil {
		ctx := p11.New(file)
		if ctx == nil {
			return nil, fmt.Errorf("%w %s: not a PKCS #11 library for this system (it does not load, or has no C_GetFunctionList)", ErrModule, path)
		}
		m = &module{path: file, ctx: ctx}
		modules.m[file] = m
	}
	if m.refs == 0 {
		err := m.ctx.Initialize()
		switch code := codeOf(err); {
		case err == nil:
			m.owned = true
		case code == ckrCryptokiAlreadyInit:
			// Another part of the program initialized it, and will
			// finalize it.
			m.owned = false
		default:
			return nil, fmt.Errorf("%w %s: C_Initialize: %w", ErrModule, path, errOf(err))
		}
	}
	m.refs++
	return m, nil
}

func (m *module) release() {
	modules.Lock()
	defer modules.Unlock()
	m.refs--
	if m.refs == 0 && m.owned {
		_ = m.ctx.Finalize()
		m.owned = false
	}
}

// codeOf returns the CK_RV of an error of the binding, or 0.
func codeOf(err error) Code {
	if e, ok := errors.AsType[p11.Error](err); ok {
		return Code(e)
	}
	return 0
}

// errOf returns an error of the binding as a Code, or as it is.
func errOf(err error) error {
	if c := codeOf(err); c != 0 {
		return c
	}
	return err
}

// Token flags (CK_TOKEN_INFO) and user types that Open looks at.
const (
	ckfLoginRequired     = 0x00000004
	ckfUserPINInit       = 0x00000008
	ckfProtectedAuthPath = 0x00000100
	ckfTokenInitialized  = 0x00000400
	ckfUserPINFinalTry   = 0x00020000
	ckfUserPINLocked     = 0x00040000
	ckuUser              = 1
	ckuContextSpecific   = 2
	ckkECEdwards         = 0x40 // PKCS #11 v3.0, which the binding predates
	ckkECMontgomery      = 0x41
)

// key is what the keys of both kinds share.
type key struct {
	uri         string // redacted
	mod         *module
	slot        uint
	find        []*p11.Attribute // the template that finds the private key
	id          []byte
	label       string
	pub         crypto.PublicKey
	alwaysAuth  bool
	pin         string
	hasPIN      bool
	loginNeeded bool // the token wants a PIN for private objects

	// mu is held for reading by every operation and for writing by
	// Close, which so waits for the operations under way.
	mu     sync.RWMutex
	closed bool

	// state is the login session and the key's handle in it; gen counts
	// logins. A session opened under an older login is closed instead of
	// reused.
	state    atomic.Pointer[loginState]
	relogin  sync.Mutex // one login at a time
	idle     chan session
	sessions chan struct{} // one token per open session but the login's
}

type loginState struct {
	gen    uint64
	login  p11.SessionHandle
	handle p11.ObjectHandle
	lost   atomic.Bool // an operation found the session or login gone
}

type session struct {
	h   p11.SessionHandle
	gen uint64
}

type rsaKey struct{ *key }

type ecKey struct {
	*key
	size int // bytes of the curve's order
}

var (
	_ crypto.Decrypter = rsaKey{}
	_ Key              = ecKey{}
)

func open(u *URI, opts *Options) (Key, error) {
	path, pinText, hasPIN, err := openChecks(u, opts)
	if err != nil {
		return nil, err
	}
	mod, err := acquireModule(path)
	if err != nil {
		return nil, err
	}
	k := &key{uri: u.Redacted(), mod: mod, pin: pinText, hasPIN: hasPIN}
	kk, err := k.open(u, opts)
	if err != nil {
		if st := k.state.Load(); st != nil {
			_ = mod.ctx.CloseSession(st.login)
		}
		mod.release()
		return nil, err
	}
	return kk, nil
}

func (k *key) open(u *URI, opts *Options) (Key, error) {
	ctx := k.mod.ctx
	slot, info, err := findToken(ctx, u)
	if err != nil {
		return nil, err
	}
	k.slot = slot
	switch {
	case info.Flags&ckfUserPINLocked != 0:
		return nil, fmt.Errorf("%w: token %q reports its user PIN locked: unlock it (reset the PIN with the SO PIN)", ErrPINLocked, printable(info.Label))
	case info.Flags&ckfLoginRequired != 0 && info.Flags&ckfUserPINInit == 0:
		return nil, fmt.Errorf("%w: token %q has no user PIN yet: initialize it", ErrLogin, printable(info.Label))
	case info.Flags&ckfLoginRequired != 0 && !k.hasPIN && info.Flags&ckfProtectedAuthPath == 0:
		return nil, ErrNoPIN
	}
	k.loginNeeded = info.Flags&ckfLoginRequired != 0 || k.hasPIN
	k.find = []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY)}
	if u.Object != "" {
		k.find = append(k.find, p11.NewAttribute(p11.CKA_LABEL, u.Object))
	}
	if len(u.ID) > 0 {
		k.find = append(k.find, p11.NewAttribute(p11.CKA_ID, u.ID))
	}
	st, err := k.login(0, func(s p11.SessionHandle) (p11.ObjectHandle, error) { return findKey(ctx, s, u) })
	if err != nil {
		return nil, err
	}
	k.state.Store(st)

	// The key's attributes and its public key.
	attr := func(t uint) []byte { return getAttr(ctx, st.login, st.handle, t) }
	k.id, k.label = attr(p11.CKA_ID), string(attr(p11.CKA_LABEL))
	k.alwaysAuth = isTrue(attr(p11.CKA_ALWAYS_AUTHENTICATE))
	if k.alwaysAuth && !k.hasPIN {
		return nil, fmt.Errorf("%w: the key needs the PIN for every use (CKA_ALWAYS_AUTHENTICATE) and none was given", ErrNoPIN)
	}
	keyType := attr(p11.CKA_KEY_TYPE)
	max := opts.MaxSessions
	if max <= 0 {
		max = DefaultMaxSessions
	}
	if n := info.MaxSessionCount; n != p11.CK_EFFECTIVELY_INFINITE && n != p11.CK_UNAVAILABLE_INFORMATION && n > 1 && uint(max) > n-1 {
		max = int(n - 1)
	}
	k.idle = make(chan session, max)
	k.sessions = make(chan struct{}, max)

	switch ulong(keyType) {
	case p11.CKK_RSA:
		pub, err := k.rsaPublic(ctx, st)
		if err != nil {
			return nil, err
		}
		k.pub = pub
		return rsaKey{k}, nil
	case p11.CKK_EC:
		pub, err := k.ecPublic(ctx, st, attr(p11.CKA_EC_PARAMS))
		if err != nil {
			return nil, err
		}
		k.pub = pub
		return ecKey{k, (pub.Curve.Params().BitSize + 7) / 8}, nil
	}
	return nil, fmt.Errorf("%w: %s (RSA and ECDSA keys are supported)", ErrKeyType, keyTypeName(keyType))
}

// login opens a session, logs in (unless the token needs no login), and
// finds the key's handle with find. gen is the number of the previous
// login.
func (k *key) login(gen uint64, find func(p11.SessionHandle) (p11.ObjectHandle, error)) (*loginState, error) {
	ctx := k.mod.ctx
	s, err := ctx.OpenSession(k.slot, p11.CKF_SERIAL_SESSION)
	if err != nil {
		return nil, fmt.Errorf("%w: C_OpenSession: %w", ErrToken, errOf(err))
	}
	fail := func(err error) (*loginState, error) {
		_ = ctx.CloseSession(s)
		return nil, err
	}
	if k.loginNeeded {
		err := ctx.Login(s, ckuUser, k.pin)
		switch code := codeOf(err); code {
		case ckrOK, ckrUserAlreadyLoggedIn:
			if err != nil && code == 0 {
				return fail(fmt.Errorf("%w: %w", ErrLogin, err))
			}
		case ckrPINIncorrect, ckrPINInvalid, ckrPINLenRange:
			msg := ""
			if info, err := ctx.GetTokenInfo(k.slot); err == nil {
				switch {
				case info.Flags&ckfUserPINLocked != 0:
					return fail(fmt.Errorf("%w: %w, and the token has now locked it", ErrPINLocked, code))
				case info.Flags&ckfUserPINFinalTry != 0:
					msg = "; one more wrong PIN locks the token"
				}
			}
			return fail(fmt.Errorf("%w (%w)%s", ErrPINIncorrect, code, msg))
		case ckrPINLocked:
			return fail(fmt.Errorf("%w (%w)", ErrPINLocked, code))
		case ckrPINExpired:
			return fail(fmt.Errorf("%w: the PIN has expired: change it (%w)", ErrLogin, code))
		default:
			return fail(fmt.Errorf("%w: %w", ErrLogin, code))
		}
	}
	h, err := find(s)
	if err != nil {
		return fail(err)
	}
	return &loginState{gen: gen + 1, login: s, handle: h}, nil
}

// findToken returns the one slot whose token the path attributes of u
// match.
func findToken(ctx *p11.Ctx, u *URI) (uint, p11.TokenInfo, error) {
	if u.LibraryManufacturer != "" || u.LibraryDescription != "" || u.LibraryVersion != "" {
		info, err := ctx.GetInfo()
		if err != nil {
			return 0, p11.TokenInfo{}, fmt.Errorf("%w: C_GetInfo: %w", ErrToken, errOf(err))
		}
		v := fmt.Sprintf("%d.%d", info.LibraryVersion.Major, info.LibraryVersion.Minor)
		if !matches(u.LibraryManufacturer, info.ManufacturerID) || !matches(u.LibraryDescription, info.LibraryDescription) ||
			(u.LibraryVersion != "" && u.LibraryVersion != v && u.LibraryVersion+".0" != v) {
			return 0, p11.TokenInfo{}, fmt.Errorf("%w: the module is %q %q version %s", ErrTokenNotFound, printable(info.ManufacturerID), printable(info.LibraryDescription), v)
		}
	}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, p11.TokenInfo{}, fmt.Errorf("%w: C_GetSlotList: %w", ErrToken, errOf(err))
	}
	var found []uint
	var infos []p11.TokenInfo
	var labels []string
	for _, slot := range slots {
		if u.HasSlotID && uint64(slot) != u.SlotID {
			continue
		}
		if u.SlotDescription != "" || u.SlotManufacturer != "" {
			si, err := ctx.GetSlotInfo(slot)
			if err != nil || !matches(u.SlotDescription, si.SlotDescription) || !matches(u.SlotManufacturer, si.ManufacturerID) {
				continue
			}
		}
		ti, err := ctx.GetTokenInfo(slot)
		if err != nil || ti.Flags&ckfTokenInitialized == 0 {
			continue
		}
		labels = append(labels, fmt.Sprintf("%q", printable(ti.Label)))
		if matches(u.Token, ti.Label) && matches(u.Manufacturer, ti.ManufacturerID) &&
			matches(u.Serial, ti.SerialNumber) && matches(u.Model, ti.Model) {
			found = append(found, slot)
			infos = append(infos, ti)
		}
	}
	switch len(found) {
	case 1:
		return found[0], infos[0], nil
	case 0:
		if len(labels) == 0 {
			return 0, p11.TokenInfo{}, fmt.Errorf("%w: the module has no initialized token", ErrTokenNotFound)
		}
		return 0, p11.TokenInfo{}, fmt.Errorf("%w (the module's tokens: %s)", ErrTokenNotFound, strings.Join(labels, ", "))
	}
	return 0, p11.TokenInfo{}, fmt.Errorf("%w: %d tokens match: add token=, serial= or slot-id=", ErrAmbiguous, len(found))
}

func matches(want, have string) bool { return want == "" || want == have }

// findKey returns the handle of the one private key that u names, or
// says why there is none.
func findKey(ctx *p11.Ctx, s p11.SessionHandle, u *URI) (p11.ObjectHandle, error) {
	var tmpl []*p11.Attribute
	if u.Object != "" {
		tmpl = append(tmpl, p11.NewAttribute(p11.CKA_LABEL, u.Object))
	}
	if len(u.ID) > 0 {
		tmpl = append(tmpl, p11.NewAttribute(p11.CKA_ID, u.ID))
	}
	keys, err := findObjects(ctx, s, append([]*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY)}, tmpl...), 2)
	if err != nil {
		return 0, err
	}
	switch len(keys) {
	case 1:
		return keys[0], nil
	case 2:
		return 0, fmt.Errorf("%w: more than one private key matches: add object= or id= to the URI", ErrAmbiguous)
	}
	// None: say what the URI names instead, if anything.
	if len(tmpl) > 0 {
		others, err := findObjects(ctx, s, tmpl, 1)
		if err == nil && len(others) == 1 {
			class := getAttr(ctx, s, others[0], p11.CKA_CLASS)
			return 0, fmt.Errorf("%w: the object the URI names is %s, not a private key", ErrKeyType, className(class))
		}
	}
	var names []string
	if all, err := findObjects(ctx, s, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY)}, 9); err == nil {
		for i, h := range all {
			if i == 8 {
				names = append(names, "...")
				break
			}
			names = append(names, describeObject(ctx, s, h))
		}
	}
	if len(names) == 0 {
		return 0, fmt.Errorf("%w: the token holds no private key (or none this login may see)", ErrKeyNotFound)
	}
	return 0, fmt.Errorf("%w (the token's private keys: %s)", ErrKeyNotFound, strings.Join(names, ", "))
}

func findObjects(ctx *p11.Ctx, s p11.SessionHandle, tmpl []*p11.Attribute, max int) ([]p11.ObjectHandle, error) {
	if err := ctx.FindObjectsInit(s, tmpl); err != nil {
		return nil, fmt.Errorf("%w: C_FindObjectsInit: %w", ErrToken, errOf(err))
	}
	objs, _, err := ctx.FindObjects(s, max)
	ferr := ctx.FindObjectsFinal(s)
	if err == nil {
		err = ferr
	}
	if err != nil {
		return nil, fmt.Errorf("%w: C_FindObjects: %w", ErrToken, errOf(err))
	}
	return objs, nil
}

// describeObject returns an object's label and id as URI attributes.
func describeObject(ctx *p11.Ctx, s p11.SessionHandle, h p11.ObjectHandle) string {
	u := URI{Object: string(getAttr(ctx, s, h, p11.CKA_LABEL)), ID: getAttr(ctx, s, h, p11.CKA_ID)}
	d := strings.TrimPrefix(u.String(), Scheme)
	if d == "" {
		return "(no label or id)"
	}
	return d
}

// getAttr returns the value of one attribute, or nil if the object has
// none or will not tell.
func getAttr(ctx *p11.Ctx, s p11.SessionHandle, h p11.ObjectHandle, t uint) []byte {
	a, err := ctx.GetAttributeValue(s, h, []*p11.Attribute{p11.NewAttribute(t, nil)})
	if err != nil || len(a) != 1 {
		return nil
	}
	return a[0].Value
}

func isTrue(v []byte) bool { return len(v) == 1 && v[0] != 0 }

// ulong decodes a CK_ULONG attribute value (native byte order and size),
// or returns ^0 if v is not one.
func ulong(v []byte) uint {
	switch len(v) {
	case 4:
		return uint(binary.NativeEndian.Uint32(v))
	case 8:
		return uint(binary.NativeEndian.Uint64(v))
	}
	return ^uint(0)
}

func keyTypeName(v []byte) string {
	switch ulong(v) {
	case p11.CKK_DSA:
		return "a DSA key"
	case p11.CKK_DH:
		return "a Diffie-Hellman key"
	case ckkECEdwards:
		return "an EdDSA key"
	case ckkECMontgomery:
		return "an X25519/X448 key"
	case ^uint(0):
		return "a key of unknown type"
	}
	return fmt.Sprintf("a key of type 0x%X", ulong(v))
}

func className(v []byte) string {
	switch ulong(v) {
	case p11.CKO_CERTIFICATE:
		return "a certificate (type=cert)"
	case p11.CKO_PUBLIC_KEY:
		return "a public key (type=public)"
	case p11.CKO_SECRET_KEY:
		return "a secret key (type=secret-key)"
	case p11.CKO_DATA:
		return "a data object (type=data)"
	}
	return fmt.Sprintf("an object of class 0x%X", ulong(v))
}

// rsaPublic returns the public key of an RSA private key: its modulus
// and public exponent, which a token shows even for a sensitive key, or
// those of its public key or certificate object.
func (k *key) rsaPublic(ctx *p11.Ctx, st *loginState) (*rsa.PublicKey, error) {
	n := getAttr(ctx, st.login, st.handle, p11.CKA_MODULUS)
	e := getAttr(ctx, st.login, st.handle, p11.CKA_PUBLIC_EXPONENT)
	if len(n) == 0 || len(e) == 0 || len(e) > 8 {
		pub, err := k.companionPublic(ctx, st.login, p11.CKK_RSA)
		if err != nil {
			return nil, err
		}
		rp, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: the key is RSA, its certificate is not", ErrKeyType)
		}
		return rp, nil
	}
	exp := new(big.Int).SetBytes(e)
	if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 {
		return nil, fmt.Errorf("%w: RSA public exponent out of range", ErrKeyType)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}, nil
}

// DER encodings of the named curves' OIDs (RFC 5480), as CKA_EC_PARAMS
// holds them.
var curveOIDs = []struct {
	der   []byte
	curve elliptic.Curve
}{
	{[]byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}, elliptic.P256()},
	{[]byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}, elliptic.P384()},
	{[]byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23}, elliptic.P521()},
}

// ecPublic returns the public key of an EC private key, from its public
// key object (CKA_EC_POINT) or its certificate: a private key object
// does not hold the point.
func (k *key) ecPublic(ctx *p11.Ctx, st *loginState, params []byte) (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	for _, c := range curveOIDs {
		if bytes.Equal(c.der, params) {
			curve = c.curve
		}
	}
	if curve == nil {
		return nil, fmt.Errorf("%w: an EC key on a curve other than P-256, P-384 and P-521", ErrKeyType)
	}
	pub, err := k.companionPublic(ctx, st.login, p11.CKK_EC)
	if err != nil {
		return nil, err
	}
	ep, ok := pub.(*ecdsa.PublicKey)
	if !ok || ep.Curve != curve {
		return nil, fmt.Errorf("%w: the public key or certificate with the key's id is not on the key's curve", ErrKeyType)
	}
	return ep, nil
}

// companionPublic returns the public key of the public key object of the
// key's id (or label), or else of its certificate.
func (k *key) companionPublic(ctx *p11.Ctx, s p11.SessionHandle, keyType uint) (crypto.PublicKey, error) {
	same := k.sameKeyTemplate()
	objs, err := findObjects(ctx, s, append(same, p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY), p11.NewAttribute(p11.CKA_KEY_TYPE, keyType)), 1)
	if err != nil {
		return nil, err
	}
	if len(objs) == 1 {
		switch keyType {
		case p11.CKK_RSA:
			n := getAttr(ctx, s, objs[0], p11.CKA_MODULUS)
			e := getAttr(ctx, s, objs[0], p11.CKA_PUBLIC_EXPONENT)
			exp := new(big.Int).SetBytes(e)
			if len(n) > 0 && exp.IsInt64() && exp.Int64() >= 3 && exp.Int64() <= 1<<31-1 {
				return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}, nil
			}
		case p11.CKK_EC:
			if pub := parseECPoint(getAttr(ctx, s, objs[0], p11.CKA_EC_PARAMS), getAttr(ctx, s, objs[0], p11.CKA_EC_POINT)); pub != nil {
				return pub, nil
			}
		}
	}
	cert, err := k.certificate(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("%w: the token holds neither a public key nor a certificate with the key's id, so its public key is unknown", ErrKeyType)
	}
	return cert.PublicKey, nil
}

// sameKeyTemplate matches the objects of the key's id, or of its label
// if it has no id.
func (k *key) sameKeyTemplate() []*p11.Attribute {
	if len(k.id) > 0 {
		return []*p11.Attribute{p11.NewAttribute(p11.CKA_ID, k.id)}
	}
	return []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, k.label)}
}

// parseECPoint returns the public key of CKA_EC_PARAMS and CKA_EC_POINT:
// the uncompressed point in a DER OCTET STRING, as PKCS #11 says, or
// bare, as some tokens give it.
func parseECPoint(params, point []byte) *ecdsa.PublicKey {
	for _, c := range curveOIDs {
		if !bytes.Equal(c.der, params) {
			continue
		}
		var inner []byte
		if rest, err := asn1.Unmarshal(point, &inner); err == nil && len(rest) == 0 {
			point = inner
		}
		var pub *ecdsa.PublicKey
		var err error
		switch c.curve {
		case elliptic.P256():
			pub, err = ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
		case elliptic.P384():
			pub, err = ecdsa.ParseUncompressedPublicKey(elliptic.P384(), point)
		case elliptic.P521():
			pub, err = ecdsa.ParseUncompressedPublicKey(elliptic.P521(), point)
		}
		if err != nil {
			return nil
		}
		return pub
	}
	return nil
}

func (k *key) Public() crypto.PublicKey { return k.pub }

func (k *key) Certificate() (*x509.Certificate, error) {
	var cert *x509.Certificate
	err := k.do("certificate", func(ctx *p11.Ctx, s p11.SessionHandle, _ p11.ObjectHandle) error {
		var err error
		cert, err = k.certificate(ctx, s)
		return err
	})
	return cert, err
}

func (k *key) certificate(ctx *p11.Ctx, s p11.SessionHandle) (*x509.Certificate, error) {
	objs, err := findObjects(ctx, s, append(k.sameKeyTemplate(), p11.NewAttribute(p11.CKA_CLASS, p11.CKO_CERTIFICATE)), 8)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, ErrNoCertificate
	}
	for _, h := range objs {
		cert, err := x509.ParseCertificate(getAttr(ctx, s, h, p11.CKA_VALUE))
		if err != nil {
			continue
		}
		if k.pub == nil { // finding the public key: the certificate is all there is
			return cert, nil
		}
		if eq, ok := k.pub.(interface{ Equal(crypto.PublicKey) bool }); ok && eq.Equal(cert.PublicKey) {
			return cert, nil
		}
	}
	return nil, fmt.Errorf("%w: the certificates with the key's id do not hold its public key", ErrNoCertificate)
}

// do runs fn on a session of the key's own, logged in, with the key's
// handle. An error of fn is returned as an *Error for op.
func (k *key) do(op string, fn func(ctx *p11.Ctx, s p11.SessionHandle, h p11.ObjectHandle) error) error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.closed {
		return k.error(op, ErrClosed)
	}
	st, err := k.current()
	if err != nil {
		return k.error(op, err)
	}
	s, err := k.session(st)
	if err != nil {
		return k.error(op, err)
	}
	err = fn(k.mod.ctx, s.h, st.handle)
	if err == nil {
		k.put(s)
		return nil
	}
	// A session whose operation failed is closed rather than reused: the
	// operation may still be active in it.
	k.discard(s)
	if c := codeOf(err); c != 0 {
		if sessionLost(c) {
			st.lost.Store(true)
		}
		return k.error(op, opError(c))
	}
	return k.error(op, err)
}

// current returns the login, logging in again first if an operation
// found the previous one gone.
func (k *key) current() (*loginState, error) {
	st := k.state.Load()
	if !st.lost.Load() {
		return st, nil
	}
	k.relogin.Lock()
	defer k.relogin.Unlock()
	if st = k.state.Load(); !st.lost.Load() {
		return st, nil
	}
	k.drain()
	_ = k.mod.ctx.CloseSession(st.login)
	next, err := k.login(st.gen, k.refind)
	if err != nil {
		return nil, fmt.Errorf("logging in again after the token dropped the session: %w", err)
	}
	k.state.Store(next)
	return next, nil
}

// refind finds the key's handle again after a new login, and checks
// that it is still the key opened.
func (k *key) refind(s p11.SessionHandle) (p11.ObjectHandle, error) {
	objs, err := findObjects(k.mod.ctx, s, k.find, 2)
	if err != nil {
		return 0, err
	}
	if len(objs) != 1 {
		return 0, fmt.Errorf("%w: the key is no longer in the token (or no longer alone)", ErrKeyNotFound)
	}
	return objs[0], nil
}

// session returns an idle session of the current login, or opens one if
// fewer than the maximum are open, or waits for one.
func (k *key) session(st *loginState) (session, error) {
	for {
		var s session
		select {
		case s = <-k.idle:
		default:
			select {
			case s = <-k.idle:
			case k.sessions <- struct{}{}:
				h, err := k.mod.ctx.OpenSession(k.slot, p11.CKF_SERIAL_SESSION)
				if err != nil {
					<-k.sessions
					if sessionLost(codeOf(err)) {
						st.lost.Store(true)
					}
					return session{}, fmt.Errorf("%w: C_OpenSession: %w", ErrToken, errOf(err))
				}
				return session{h, st.gen}, nil
			}
		}
		if s.gen == st.gen {
			return s, nil
		}
		k.discard(s) // opened under an older login
	}
}

func (k *key) put(s session) {
	if st := k.state.Load(); s.gen != st.gen || st.lost.Load() {
		k.discard(s)
		return
	}
	k.idle <- s // never blocks: at most cap(idle) sessions are open
}

func (k *key) discard(s session) {
	_ = k.mod.ctx.CloseSession(s.h)
	<-k.sessions
}

// drain closes the idle sessions.
func (k *key) drain() {
	for {
		select {
		case s := <-k.idle:
			k.discard(s)
		default:
			return
		}
	}
}

func (k *key) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	k.drain()
	_ = k.mod.ctx.CloseSession(k.state.Load().login)
	k.pin = ""
	k.mu.Unlock()
	k.mod.release()
	return nil
}

func (k *key) error(op string, err error) error {
	return &Error{URI: k.uri, Op: op, Err: err}
}

// opError says what a CK_RV from an operation means.
func opError(c Code) error {
	switch c {
	case ckrKeyFunctionNotPermitted, ckrMechanismInvalid, ckrMechanismParamInvalid, ckrKeyTypeInconsistent,
		ckrFunctionNotSupported, ckrKeySizeRange:
		return fmt.Errorf("%w (%w)", ErrRefused, c)
	case ckrPINIncorrect, ckrPINLocked, ckrPINExpired:
		return fmt.Errorf("%w: the key's own login failed (%w)", ErrLogin, c)
	}
	if sessionLost(c) {
		return fmt.Errorf("%w: the token dropped the session or the login (%w); the next operation logs in again", ErrToken, c)
	}
	return fmt.Errorf("%w (%w)", ErrToken, c)
}

// signRaw runs C_Sign with mech over data.
func (k *key) signRaw(mech uint, params []byte, data []byte) ([]byte, error) {
	var sig []byte
	err := k.do("sign", func(ctx *p11.Ctx, s p11.SessionHandle, h p11.ObjectHandle) error {
		if err := ctx.SignInit(s, []*p11.Mechanism{p11.NewMechanism(mech, params)}, h); err != nil {
			return err
		}
		if err := k.contextLogin(ctx, s); err != nil {
			return err
		}
		var err error
		sig, err = ctx.Sign(s, data)
		return err
	})
	if err != nil {
		if e, ok := errors.AsType[*Error](err); ok && errors.Is(err, ErrRefused) {
			e.Err = fmt.Errorf("%w with %s", e.Err, mechanismName(mech))
		}
		return nil, err
	}
	return sig, nil
}

// contextLogin gives the PIN again for a key that wants it for every
// operation (CKA_ALWAYS_AUTHENTICATE).
func (k *key) contextLogin(ctx *p11.Ctx, s p11.SessionHandle) error {
	if !k.alwaysAuth {
		return nil
	}
	return ctx.Login(s, ckuContextSpecific, k.pin)
}

func mechanismName(m uint) string {
	switch m {
	case p11.CKM_RSA_PKCS:
		return "CKM_RSA_PKCS"
	case p11.CKM_RSA_PKCS_PSS:
		return "CKM_RSA_PKCS_PSS"
	case p11.CKM_ECDSA:
		return "CKM_ECDSA"
	}
	return fmt.Sprintf("mechanism 0x%X", m)
}

// DigestInfo prefixes of PKCS #1 v1.5 signatures (RFC 8017, section
// 9.2, note 1), as crypto/rsa has them. MD5SHA1 (TLS 1.0 and 1.1) and
// hash 0 (a message signed as it is) have none.
var pkcs1Prefix = map[crypto.Hash][]byte{
	crypto.MD5:     {0x30, 0x20, 0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05, 0x05, 0x00, 0x04, 0x10},
	crypto.SHA1:    {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	crypto.SHA224:  {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c},
	crypto.SHA256:  {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384:  {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512:  {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
	crypto.MD5SHA1: {},
	0:              {},
}

// PSS hash mechanisms and mask generation functions (PKCS #11).
var pssParams = map[crypto.Hash][2]uint{
	crypto.SHA1:   {p11.CKM_SHA_1, p11.CKG_MGF1_SHA1},
	crypto.SHA224: {p11.CKM_SHA224, p11.CKG_MGF1_SHA224},
	crypto.SHA256: {p11.CKM_SHA256, p11.CKG_MGF1_SHA256},
	crypto.SHA384: {p11.CKM_SHA384, p11.CKG_MGF1_SHA384},
	crypto.SHA512: {p11.CKM_SHA512, p11.CKG_MGF1_SHA512},
}

func (k rsaKey) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	h := opts.HashFunc()
	if h != 0 && h != crypto.MD5SHA1 && len(digest) != h.Size() {
		return nil, k.error("sign", fmt.Errorf("%w: a %s digest of %d bytes", ErrUnsupported, h, len(digest)))
	}
	if h == crypto.MD5SHA1 && len(digest) != 36 {
		return nil, k.error("sign", fmt.Errorf("%w: an MD5+SHA1 digest of %d bytes", ErrUnsupported, len(digest)))
	}
	if pss, ok := opts.(*rsa.PSSOptions); ok {
		p, ok := pssParams[h]
		if !ok {
			return nil, k.error("sign", fmt.Errorf("%w: PSS with %v", ErrUnsupported, h))
		}
		salt := pss.SaltLength
		switch salt {
		case rsa.PSSSaltLengthEqualsHash:
			salt = h.Size()
		case rsa.PSSSaltLengthAuto:
			salt = (k.pub.(*rsa.PublicKey).N.BitLen()-1+7)/8 - 2 - h.Size()
		}
		if salt < 0 {
			return nil, k.error("sign", fmt.Errorf("%w: PSS salt length %d", ErrUnsupported, pss.SaltLength))
		}
		return k.signRaw(p11.CKM_RSA_PKCS_PSS, p11.NewPSSParams(p[0], p[1], uint(salt)), digest)
	}
	prefix, ok := pkcs1Prefix[h]
	if !ok {
		return nil, k.error("sign", fmt.Errorf("%w: PKCS #1 v1.5 with %v", ErrUnsupported, h))
	}
	return k.signRaw(p11.CKM_RSA_PKCS, nil, append(append([]byte(nil), prefix...), digest...))
}

func (k rsaKey) Decrypt(rand io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	sessionKeyLen := 0
	switch o := opts.(type) {
	case nil:
	//lint:ignore SA1019 what crypto.Decrypter callers pass for PKCS #1 v1.5 (the .enc.sgn key transport, the TLS RSA key exchange).
	case *rsa.PKCS1v15DecryptOptions:
		sessionKeyLen = o.SessionKeyLen
	default:
		return nil, k.error("decrypt", fmt.Errorf("%w: decryption other than PKCS #1 v1.5 (%T)", ErrUnsupported, opts))
	}
	if sessionKeyLen > 0 {
		// As rsa.DecryptPKCS1v15SessionKey: a ciphertext that does not
		// decrypt to a key of the right length gives a random one, so
		// that the result tells an attacker nothing (RFC 5246, section
		// 7.4.7.1). The token's time may still differ between the two.
		if rand == nil {
			rand = cryptorand.Reader
		}
		fake := make([]byte, sessionKeyLen)
		if _, err := io.ReadFull(rand, fake); err != nil {
			return nil, k.error("decrypt", err)
		}
		pt, err := k.decrypt(msg)
		ok := subtle.ConstantTimeEq(int32(len(pt)), int32(sessionKeyLen))
		if err != nil || ok == 0 {
			return fake, nil
		}
		return pt, nil
	}
	return k.decrypt(msg)
}

func (k rsaKey) decrypt(msg []byte) ([]byte, error) {
	var pt []byte
	err := k.do("decrypt", func(ctx *p11.Ctx, s p11.SessionHandle, h p11.ObjectHandle) error {
		if err := ctx.DecryptInit(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_RSA_PKCS, nil)}, h); err != nil {
			return err
		}
		if err := k.contextLogin(ctx, s); err != nil {
			return err
		}
		var err error
		pt, err = ctx.Decrypt(s, msg)
		return err
	})
	if err != nil {
		if e, ok := errors.AsType[*Error](err); ok && errors.Is(err, ErrRefused) {
			e.Err = fmt.Errorf("%w with CKM_RSA_PKCS", e.Err)
		}
		return nil, err
	}
	return pt, nil
}

func (k ecKey) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if h := opts.HashFunc(); h != 0 && len(digest) != h.Size() {
		return nil, k.error("sign", fmt.Errorf("%w: a %s digest of %d bytes", ErrUnsupported, h, len(digest)))
	}
	if _, ok := opts.(*rsa.PSSOptions); ok {
		return nil, k.error("sign", fmt.Errorf("%w: PSS with an ECDSA key", ErrUnsupported))
	}
	// A digest longer than the order is cut to its leftmost bits (FIPS
	// 186-5, section 6.4.1): bytes, for the curves here whose order has
	// a whole number of bytes; P-521's order is longer than any digest.
	if len(digest) > k.size {
		digest = digest[:k.size]
	}
	raw, err := k.signRaw(p11.CKM_ECDSA, nil, digest)
	if err != nil {
		return nil, err
	}
	if len(raw) != 2*k.size {
		return nil, k.error("sign", fmt.Errorf("%w: the token returned an ECDSA signature of %d bytes", ErrToken, len(raw)))
	}
	r := new(big.Int).SetBytes(raw[:k.size])
	s := new(big.Int).SetBytes(raw[k.size:])
	return asn1.Marshal(struct{ R, S *big.Int }{r, s})
}
