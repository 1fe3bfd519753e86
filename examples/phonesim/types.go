package main

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"

	"github.com/ucsec/ucsec/ctl"
)

// The types the parts of the simulation hand each other. The cluster side
// (pki.go, cluster.go, provision.go) makes a clusterPKI and, for each
// phone it provisions, a sipIdentity; the SIP side (sip.go, registrar.go,
// phoneua.go, call.go, media.go) takes them.

// clusterPKI holds the cluster's certificates and keys, as CUCM has them.
type clusterPKI struct {
	// SAST signs the ITL and CTL (CUCM's ITLRecovery key); NextSAST is
	// the signer the ITL rolls over to, which phones accept through TVS.
	SAST, NextSAST       *x509.Certificate
	SASTKey, NextSASTKey crypto.Signer
	// CCM is the CallManager certificate: the SIP-TLS server's, and the
	// TFTP signer of configuration files (role CCM+TFTP).
	CCM    *x509.Certificate
	CCMKey crypto.Signer
	// CAPF is the CAPF certificate, a CA that issues the phones' LSCs;
	// the SIP server checks phone certificates against it.
	CAPF    *x509.Certificate
	CAPFKey crypto.Signer
	// TVS is the Trust Verification Service's certificate.
	TVS    *x509.Certificate
	TVSKey crypto.Signer
}

// sipIdentity is what a provisioned phone brings to SIP.
type sipIdentity struct {
	Device    string // SEP + 12 hex digits
	Extension string // its directory number, such as "1001"
	// Secure phones register over TLS with their LSC as the client
	// certificate, and key their media with SDES over that TLS; a
	// non-secure phone uses TCP and RTP.
	Secure bool
	LSC    tls.Certificate // client certificate and key (secure phones)
	// Trust are the certificates the phone's trust list holds in the CCM
	// or CCM+TFTP role: the SIP server's certificate must be one of them.
	Trust *x509.CertPool
	// Digest credentials, read from the phone's decrypted configuration.
	DigestUser, DigestPassword string
	// SIPServer is the SIP server's "host:port" as the phone's
	// configuration names it (processNodeName with securedSipPort for a
	// secure phone, sipPort for a non-secure one). Added by the
	// provisioning side.
	SIPServer string
	// SIPServers are the SIP servers of every node of the phone's
	// CallManager group, in the configuration's order, SIPServer first:
	// the nodes the phone fails over to.
	SIPServers []string
	// Phone is the phone's trust state (its ITL and CTL, and its TVS).
	Phone *ctl.Phone
}
