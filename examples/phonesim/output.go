package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// A phoneRow is one line of the result table: how far one phone got.
type phoneRow struct {
	Phone      string `json:"phone"`
	Extension  string `json:"extension"`
	Secure     bool   `json:"secure"`
	LSCSerial  string `json:"lscSerial,omitempty"`
	Config     string `json:"config"`          // "encrypted", "signed", or "failed"
	ITL        string `json:"itl"`             // the trust-list rules that accepted its ITLs, "P1 P4"
	Registered bool   `json:"registered"`      //
	Call       string `json:"call"`            // "→1002", "←1001 →1003", with " failed" after a failed one
	Calls      int    `json:"calls"`           // calls it took part in
	Media      string `json:"media"`           // the SRTP suite, or "RTP", or "mixed"
	Sent       int    `json:"packetsSent"`     // media packets sent, all calls
	Received   int    `json:"packetsReceived"` // media packets received and decrypted intact
	Icon       string `json:"icon"`            // what the phone shows: "lock", "shield", "none"
	OK         bool   `json:"ok"`              // the phone reached its expected state
	Err        string `json:"error,omitempty"` //
}

// A check is one negative case: something the cluster or a phone must
// refuse.
type check struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	Err  string `json:"error,omitempty"`
}

// A report is the whole run's result.
type report struct {
	Phones  []phoneRow `json:"phones"`
	Checks  []check    `json:"checks"`
	OK      bool       `json:"ok"`
	Verdict string     `json:"verdict"`
	Seconds float64    `json:"seconds"`
}

func (r *report) finish(seconds float64) {
	r.Seconds = seconds
	phonesOK, checksOK := 0, 0
	for _, p := range r.Phones {
		if p.OK {
			phonesOK++
		}
	}
	for _, c := range r.Checks {
		if c.OK {
			checksOK++
		}
	}
	r.OK = phonesOK == len(r.Phones) && checksOK == len(r.Checks) && len(r.Phones) > 0
	if r.OK {
		r.Verdict = fmt.Sprintf("OK: all %d phones reached their expected state, %d of %d checks passed, in %.1fs",
			len(r.Phones), checksOK, len(r.Checks), seconds)
	} else {
		r.Verdict = fmt.Sprintf("FAIL: %d of %d phones reached their expected state, %d of %d checks passed",
			phonesOK, len(r.Phones), checksOK, len(r.Checks))
	}
}

// writeText prints the table, the checks and the verdict.
func (r *report) writeText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PHONE\tEXT\tLSC SERIAL\tCONFIG\tITL\tREGISTERED\tCALL\tMEDIA\tPACKETS\tICON\t")
	for _, p := range r.Phones {
		serial := p.LSCSerial
		if len(serial) > 12 {
			serial = serial[:12] + "…"
		}
		if serial == "" {
			serial = "-"
		}
		mark := ""
		if !p.OK {
			mark = "✗ " + p.Err
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n",
			p.Phone, p.Extension, serial, p.Config, p.ITL, yesNo(p.Registered), p.Call, p.Media, p.Received, p.Sent, p.Icon, mark)
	}
	tw.Flush()
	if len(r.Checks) > 0 {
		fmt.Fprintln(w, "\nNegative checks:")
		for _, c := range r.Checks {
			status := "ok"
			if !c.OK {
				status = "FAILED: " + c.Err
			}
			fmt.Fprintf(w, "  %-52s %s\n", c.Name, status)
		}
	}
	fmt.Fprintln(w, "\n"+r.Verdict)
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// oneLine makes an error message fit a table cell.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", " ")
}
