// Package itl parses, verifies and creates Cisco Initial Trust List files
// (ITLFile.tlv): the trust list every phone of a CUCM cluster downloads,
// in mixed mode or not, listing the TFTP, TVS and CAPF certificates and the
// ITLRecovery key that signs it.
//
// An ITL has the format of a CTL (package ctl), whose types this package
// uses; what differs is the policy: an ITL is signed by its ITLRecovery
// (SAST) record or by a TFTP-capable record (TFTP, CCM+TFTP), and must stay
// under the 64 KiB phones accept. Read one with [Parse] and [Verify], make
// one with [ctl.NewRecord] and [Create].
//
// # Security
//
// As in package ctl: [Verify] proves that the file is intact and signed by
// its own signing record; whether that signer is trusted is decided by
// [ctl.Phone.AcceptList] with [ITLPolicy].
//
// # Compatibility
//
// See package ctl. CUCM 12.0 and later sign the ITL with the ITLRecovery
// key; earlier releases with the TFTP node's CallManager key, which is then
// in the list as SAST and as TFTP or CCM+TFTP. A signer version (element
// 0x1C) of 1.1 makes phones use EC certificates and HTTPS provisioning on
// port 6971 (certutils documentation; not seen in Cisco listings).
package itl

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"io"

	"github.com/ucsec/ucsec/ctl"
)

// MaxSize is the size of the largest ITL phones accept: more than about 39
// certificates make the file larger and phones fail to register.
const MaxSize = 64 * 1024

// WarnSize is the size from which a builder should warn that the ITL is
// getting close to MaxSize.
const WarnSize = 56 * 1024

// ITLPolicy returns the policy of ITLFile.tlv: signed by its SAST
// (ITLRecovery), TFTP or CCM+TFTP record, at most two SAST records, at
// most MaxSize bytes.
func ITLPolicy() ctl.Policy {
	return ctl.Policy{
		Name:            "ITL",
		DefaultFilename: "ITLFile.tlv",
		SignerRoles:     []ctl.Role{ctl.RoleSAST, ctl.RoleTFTP, ctl.RoleCCMTFTP},
		MaxSAST:         2,
		MaxSize:         MaxSize,
	}
}

// Parse parses an ITL. It checks the layout and the size limit, and
// verifies nothing; see [Verify]. Errors wrap sgn.ErrMalformed, or
// ctl.ErrPolicy for a file larger than MaxSize.
func Parse(data []byte) (*ctl.File, error) {
	if len(data) > MaxSize {
		return nil, &ctl.PolicyError{Policy: "ITL", Msg: fmt.Sprintf("file is %d bytes, more than the %d phones accept", len(data), MaxSize)}
	}
	return ctl.Parse(data)
}

// Verify checks f against the ITL policy and verifies its signature with
// its signing record's key.
func Verify(f *ctl.File) error { return ITLPolicy().Verify(f) }

// Create builds and signs an ITL; see [ctl.Policy.Create]. The file name
// defaults to ITLFile.tlv; a file larger than MaxSize is an error.
func Create(rand io.Reader, template *ctl.File, signer *x509.Certificate, priv crypto.Signer) ([]byte, error) {
	return ITLPolicy().Create(rand, template, signer, priv)
}

// The types of an ITL are those of package ctl.
type (
	File   = ctl.File
	Record = ctl.Record
	Role   = ctl.Role
)
