package srtpkeys

import (
	"bytes"
	"fmt"

	"github.com/pion/dtls/v3"
)

// dtlsExporterLabel is the RFC 5764 §4.2 exporter label.
const dtlsExporterLabel = "EXTRACTOR-dtls_srtp"

// DTLSProfiles returns the pion/dtls SRTP protection profiles for suites,
// in the same order, for dtls.WithSRTPProtectionProfiles. With no suites it
// returns the profiles of [PionSuites]. A suite with no DTLS-SRTP profile
// (AES-192) gives an error wrapping [ErrUnknownSuite].
//
// A pion/dtls server picks the first profile in its own list that the
// client offered, so the order is the server's preference.
func DTLSProfiles(suites ...Suite) ([]dtls.SRTPProtectionProfile, error) {
	if len(suites) == 0 {
		suites = PionSuites()
	}
	out := make([]dtls.SRTPProtectionProfile, len(suites))
	for i, s := range suites {
		p, ok := s.DTLSProfile()
		if !ok {
			if !s.Valid() {
				return nil, &SuiteError{Suite: s}
			}
			return nil, fmt.Errorf("%w: %s has no DTLS-SRTP protection profile", ErrUnknownSuite, s)
		}
		out[i] = dtls.SRTPProtectionProfile(p)
	}
	return out, nil
}

// FromDTLS returns the SRTP master keys of a DTLS-SRTP association (RFC 5764
// §4.2) once conn's handshake has completed: the suite the two ends agreed,
// the key this end sends with (Local) and the key it receives with
// (Remote). isClient says which end conn is; the exported keying material
// is laid out client key, server key, client salt, server salt, so getting
// it wrong swaps the two directions and no packet will authenticate.
//
// mki is the MKI this end configured with dtls.WithSRTPMasterKeyIdentifier,
// or nil. An MKI is in use only when the client offered one and the server
// echoed it (RFC 5764 §4.1.2; pion's server echoes only an MKI equal to
// its own), and then every packet in both directions carries it: FromDTLS
// sets it on Local and Remote exactly when the peer's MKI equals mki, and
// leaves both nil otherwise.
//
// Errors wrap [ErrDTLS], or [ErrUnknownSuite] when the negotiated profile
// is one this package does not run (the NULL-cipher profiles).
func FromDTLS(conn *dtls.Conn, isClient bool, mki []byte) (*Session, error) {
	profile, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return nil, fmt.Errorf("%w: no SRTP protection profile was negotiated", ErrDTLS)
	}
	suite, err := SuiteForProfile(uint16(profile))
	if err != nil {
		return nil, err
	}
	state, ok := conn.ConnectionState()
	if !ok {
		return nil, fmt.Errorf("%w: the handshake has not completed", ErrDTLS)
	}
	kl, sl := suite.KeyLen(), suite.SaltLen()
	km, err := state.ExportKeyingMaterial(dtlsExporterLabel, nil, 2*(kl+sl))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDTLS, err)
	}
	defer clear(km)
	clientKey, serverKey := km[:kl], km[kl:2*kl]
	clientSalt, serverSalt := km[2*kl:2*kl+sl], km[2*kl+sl:]
	client, err := NewMasterKey(suite, clientKey, clientSalt)
	if err != nil {
		return nil, err
	}
	server, err := NewMasterKey(suite, serverKey, serverSalt)
	if err != nil {
		return nil, err
	}
	if !distinctKeys(client, server) {
		// The exporter output is a PRF stream: equal halves mean it is broken.
		return nil, fmt.Errorf("%w: the exported client and server keys are equal", ErrDTLS)
	}
	s := &Session{Suite: suite, Local: server, Remote: client}
	if isClient {
		s.Local, s.Remote = client, server
	}
	if peer, ok := conn.RemoteSRTPMasterKeyIdentifier(); ok && len(mki) > 0 && bytes.Equal(peer, mki) {
		s.Local.MKI, s.Remote.MKI = bytes.Clone(mki), bytes.Clone(mki)
	}
	return s, nil
}
