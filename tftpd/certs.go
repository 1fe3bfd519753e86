package tftpd

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/ucsec/ucsec/capf"
)

// PhoneCertificates gives the certificate a device's configuration is
// encrypted to: its LSC (or MIC), whose MD5 the short configuration names
// and the phone compares with its own.
type PhoneCertificates interface {
	// PhoneCertificate returns the device's certificate, or nil and no
	// error if it has none. An error means the source could not tell
	// (a store that is down): the service then fails closed and serves
	// neither the encrypted nor the plain configuration.
	PhoneCertificate(ctx context.Context, device string) (*x509.Certificate, error)
}

// CAPFCertificates takes phone certificates from a CAPF store: the LSC
// that capf.LookupDevice reports in Device.Certificate. An LSC issued
// (or deleted) through the store is seen at the next request, so a
// device's next configuration is encrypted to its new certificate.
type CAPFCertificates struct {
	Store capf.Store
}

// PhoneCertificate implements PhoneCertificates.
func (c CAPFCertificates) PhoneCertificate(ctx context.Context, device string) (*x509.Certificate, error) {
	if c.Store == nil {
		return nil, fmt.Errorf("%w: CAPFCertificates without a Store", ErrConfig)
	}
	d, err := capf.LookupDevice(ctx, c.Store, device)
	if errors.Is(err, capf.ErrUnknownDevice) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(d.Certificate) == 0 {
		return nil, nil
	}
	return x509.ParseCertificate(d.Certificate)
}

// maxCertFile bounds a certificate file of a CertDirectory.
const maxCertFile = 64 << 10

// CertDirectory takes phone certificates from files DEVICE.pem
// (SEP001122334455.pem) in a directory: the first CERTIFICATE block of a
// PEM file. A missing file means no certificate; a file that is not a
// certificate is an error. Files are read at every request, so a
// replaced file takes effect at once; they are opened through Root, so a
// symbolic link out of the directory is refused.
type CertDirectory struct {
	Root *os.Root
}

// PhoneCertificate implements PhoneCertificates.
func (d CertDirectory) PhoneCertificate(ctx context.Context, device string) (*x509.Certificate, error) {
	if d.Root == nil {
		return nil, fmt.Errorf("%w: CertDirectory without a Root", ErrConfig)
	}
	if !validDevice(device) {
		return nil, nil
	}
	f, err := d.Root.Open(device + ".pem")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s.pem is not a regular file", device)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCertFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxCertFile {
		return nil, fmt.Errorf("%s.pem is over %d bytes", device, maxCertFile)
	}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("%s.pem holds no CERTIFICATE block", device)
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}
