package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/ucsec/ucsec/capf"
)

// A phoneRow is one line of the result table: how far one phone got.
type phoneRow struct {
	Phone      string `json:"phone"`
	Extension  string `json:"extension"`
	Secure     bool   `json:"secure"`
	LSCSerial  string `json:"lscSerial,omitempty"`
	Key        string `json:"key,omitempty"`   // the LSC's key, "rsa2048" or "ec256"
	Config     string `json:"config"`          // "encrypted", "signed" (EC LSC), or "failed"
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

	// Node is the node it registered with first, numbered from 1, and
	// FailedOverTo the one it registered with after losing that one;
	// both 0 (left out) with one node.
	Node         int `json:"node,omitempty"`
	FailedOverTo int `json:"failedOverTo,omitempty"`
}

// A check is one negative case, something the cluster or a phone must
// refuse; or, with several nodes, one cluster check, something the nodes
// must do as one cluster; or the planner check, a prediction of package
// trustplan that the phones must have borne out.
type check struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	Err  string `json:"error,omitempty"`
	// Nodes are the nodes a cluster check involved, numbered from 1; nil
	// for a negative check.
	Nodes []int `json:"nodes,omitempty"`
	// Planner marks the planner check.
	Planner bool `json:"planner,omitempty"`
}

// A report is the whole run's result.
type report struct {
	Nodes int `json:"nodes,omitempty"` // the cluster's nodes; left out for one
	// Keys is the key the CAPF installs asked the phones for (-keys):
	// "rsa2048", or "ec256", whose phones get signed configurations.
	Keys    capf.KeySpec `json:"keys"`
	Phones  []phoneRow   `json:"phones"`
	Checks  []check      `json:"checks"`
	OK      bool         `json:"ok"`
	Verdict string       `json:"verdict"`
	Seconds float64      `json:"seconds"`
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
	onNodes := ""
	if r.Nodes > 1 {
		onNodes = fmt.Sprintf(" on %d nodes", r.Nodes)
	}
	onNodes += keysNote(r.Keys)
	if r.OK {
		r.Verdict = fmt.Sprintf("OK: all %d phones reached their expected state%s, %d of %d checks passed, in %.1fs",
			len(r.Phones), onNodes, checksOK, len(r.Checks), seconds)
	} else {
		r.Verdict = fmt.Sprintf("FAIL: %d of %d phones reached their expected state, %d of %d checks passed",
			phonesOK, len(r.Phones), checksOK, len(r.Checks))
	}
}

// writeText prints the table, the checks and the verdict. With several
// nodes the table has a NODE column: the node each phone registered with,
// and where it failed over to ("3→1").
func (r *report) writeText(w io.Writer) {
	nodes := false
	for _, p := range r.Phones {
		nodes = nodes || p.Node > 0
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	nodeHead := ""
	if nodes {
		nodeHead = "NODE\t"
	}
	fmt.Fprintln(tw, "PHONE\tEXT\t"+nodeHead+"LSC SERIAL\tCONFIG\tITL\tREGISTERED\tCALL\tMEDIA\tPACKETS\tICON\t")
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
		node := ""
		if nodes {
			node = "-"
			if p.Node > 0 {
				node = strconv.Itoa(p.Node)
			}
			if p.FailedOverTo > 0 {
				node += "→" + strconv.Itoa(p.FailedOverTo)
			}
			node += "\t"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n",
			p.Phone, p.Extension, node, serial, p.Config, p.ITL, yesNo(p.Registered), p.Call, p.Media, p.Received, p.Sent, p.Icon, mark)
	}
	tw.Flush()
	var planner, negative, cluster []check
	for _, c := range r.Checks {
		switch {
		case c.Planner:
			planner = append(planner, c)
		case c.Nodes != nil:
			cluster = append(cluster, c)
		default:
			negative = append(negative, c)
		}
	}
	for _, group := range []struct {
		title  string
		checks []check
	}{{"Planner check:", planner}, {"Negative checks:", negative}, {"Cluster checks:", cluster}} {
		if len(group.checks) == 0 {
			continue
		}
		fmt.Fprintln(w, "\n"+group.title)
		width := 52
		for _, c := range group.checks {
			width = max(width, utf8.RuneCountInString(c.Name))
		}
		for _, c := range group.checks {
			status := "ok"
			if !c.OK {
				status = "FAILED: " + c.Err
			}
			fmt.Fprintf(w, "  %s%s %s\n", c.Name, strings.Repeat(" ", width-utf8.RuneCountInString(c.Name)), status)
		}
	}
	fmt.Fprintln(w, "\n"+r.Verdict)
}

// keysNote says in the verdict which keys the LSCs are on: "" before
// the keys are known, " with RSA-2048 LSCs" or " with EC P-256 LSCs
// (configurations signed, not encrypted)".
func keysNote(k capf.KeySpec) string {
	switch {
	case k == capf.KeyDefault:
		return ""
	case k.RSABits() != 0:
		return fmt.Sprintf(" with RSA-%d LSCs", k.RSABits())
	}
	return fmt.Sprintf(" with EC %s LSCs (configurations signed, not encrypted)", k.Curve().Params().Name)
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
