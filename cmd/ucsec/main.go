package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// groups lists the command groups in the order help shows them. Adding a
// group is adding its table here; each lives in a file of its own.
var groups = []*group{sgnGroup, tlvGroup, cnfGroup, certGroup, digestGroup, srtpGroup, capfGroup, tvsGroup, tftpGroup}

// commands lists the commands that stand alone, "ucsec <command>", in the
// order help shows them, after the groups. A name is either a group's or a
// command's, never both.
var commands = []*command{statusCommand}

// Exit statuses.
const (
	exitOK      = 0 // success
	exitInvalid = 1 // a signature did not verify or has another signer, a decryption failed, a digest response did not match, an SDES offer has nothing acceptable, a CAPF server refused, or a TVS does not trust the certificate
	exitError   = 2 // usage error, unreadable or malformed input
)

// A group is a set of commands, usually those of one library package. A
// group may hold further groups, whose commands take one more word: the
// "sdes" group of "srtp" holds "ucsec srtp sdes parse".
type group struct {
	name     string // one word
	summary  string // one line for the top-level help
	commands []*command
	groups   []*group // subgroups, listed after the commands
}

// A command is one "ucsec <group> <command>", or "ucsec <command>" for
// one of [commands].
type command struct {
	name     string
	synopsis string   // what follows "ucsec [<group>] <command>" on the usage line
	summary  string   // one line for the group's help, or the top-level help
	help     string   // paragraphs printed between the usage line and the flags
	examples []string // full example invocations
	args     argCount

	// setup defines the command's flags on fs and returns the action that
	// runs once they are parsed, with the positional arguments.
	setup func(fs *flag.FlagSet) action
}

// An action runs a command. Its error decides the exit status; see
// [env.exitStatus].
type action func(e *env, args []string) error

// argCount is how many positional arguments a command takes; max < 0 means
// no limit. what names a missing argument in the error message; "" means
// "input file".
type argCount struct {
	min, max int
	what     string
}

var (
	noArgs   = argCount{0, 0, ""}
	oneArg   = argCount{1, 1, ""}
	someArgs = argCount{1, -1, ""}
)

// env is where a command reads and writes.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command line args (without the program name) and returns
// the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) > 0 && args[0] == "help" {
		// "ucsec help sgn sign" is "ucsec sgn sign -h".
		args = append(args[1:len(args):len(args)], "-h")
	}
	switch {
	case len(args) == 0:
		printUsage(stderr)
		return exitError
	case isHelp(args[0]):
		printUsage(stdout)
		return exitOK
	}
	if c := findCommand(commands, args[0]); c != nil {
		return c.execute(e, "ucsec "+c.name, args[1:])
	}
	g := findGroup(groups, args[0])
	if g == nil {
		fmt.Fprintf(stderr, "ucsec: unknown command or group %q\n", args[0])
		printUsage(stderr)
		return exitError
	}
	// name is the group's words, such as "srtp sdes".
	name := g.name
	for args = args[1:]; ; args = args[1:] {
		switch {
		case len(args) == 0:
			g.printUsage(stderr, name)
			return exitError
		case isHelp(args[0]):
			g.printUsage(stdout, name)
			return exitOK
		}
		sub := findGroup(g.groups, args[0])
		if sub == nil {
			break
		}
		g, name = sub, name+" "+sub.name
	}
	c := findCommand(g.commands, args[0])
	if c == nil {
		fmt.Fprintf(stderr, "ucsec: unknown command \"%s %s\"\n", name, args[0])
		g.printUsage(stderr, name)
		return exitError
	}
	return c.execute(e, "ucsec "+name+" "+c.name, args[1:])
}

// execute parses the command's flags and arguments and runs it; path is
// the command's words, such as "ucsec sgn sign".
func (c *command) execute(e *env, path string, args []string) int {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported below, help by printHelp
	act := c.setup(fs)
	err := fs.Parse(permuteArgs(fs, args))
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.printHelp(e.stdout, path, fs)
		return exitOK
	case err != nil:
		err = usageError(err.Error())
	default:
		err = c.args.check(fs.Args())
	}
	if err == nil {
		err = act(e, fs.Args())
		closeKeys(fs) // the keys in tokens the command opened
	}
	if ue, ok := errors.AsType[usageError](err); ok {
		fmt.Fprintf(e.stderr, "ucsec: %s; see '%s -h'\n", ue, path)
		return exitError
	}
	return e.exitStatus(err)
}

// check reports a usage error if args does not fit n.
func (n argCount) check(args []string) error {
	switch {
	case len(args) < n.min:
		return usageError("missing " + cmp.Or(n.what, "input file"))
	case n.max >= 0 && len(args) > n.max:
		return usageError(fmt.Sprintf("unexpected argument %q", args[n.max]))
	}
	return nil
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help"
}

// findGroup returns the group of list called name, or nil.
func findGroup(list []*group, name string) *group {
	for _, g := range list {
		if g.name == name {
			return g
		}
	}
	return nil
}

// findCommand returns the command of list called name, or nil.
func findCommand(list []*command, name string) *command {
	for _, c := range list {
		if c.name == name {
			return c
		}
	}
	return nil
}

// printUsage prints the top-level help.
func printUsage(w io.Writer) {
	fmt.Fprint(w, "Usage: ucsec <group> <command> [flags] [args]\n"+
		"       ucsec <command> [flags] [args]\n\n"+
		"Cisco unified-communications security tool: signed files, trust lists, encrypted configurations, certificates, SIP digest authentication, SRTP keys, call security status, CAPF and TVS.\n\n"+
		"Groups:\n")
	// The summaries of groups and commands line up.
	width := 0
	for _, g := range groups {
		width = max(width, len(g.name))
	}
	for _, c := range commands {
		width = max(width, len(c.name))
	}
	for _, g := range groups {
		fmt.Fprintf(w, "  %-*s   %s\n", width, g.name, g.summary)
	}
	fmt.Fprint(w, "\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-*s   %s\n", width, c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun 'ucsec <group> -h', 'ucsec <group> <command> -h' or 'ucsec <command> -h' for help.\n"+
		"Flags may come before or after the arguments; '-' is standard input or output.\n"+
		"Exit status: 0 ok, 1 signature, trust list or digest response not valid, decryption failed, no acceptable SDES attribute, CAPF refusal, or certificate not trusted by TVS, 2 usage or input error.\n\n"+
		"Example:\n"+
		"  ucsec sgn sign --cert tftp.pem --key tftp.pem --hash sha512 SEP001122334455.cnf.xml\n")
}

// printUsage prints the help of the group, whose words are name (such as
// "srtp sdes"). It lists the commands of its subgroups too.
func (g *group) printUsage(w io.Writer, name string) {
	fmt.Fprintf(w, "Usage: ucsec %s <command> [flags] [args]\n\n%s.\n\nCommands:\n", name, upperFirst(g.summary))
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	g.walk("", func(words string, c *command) {
		fmt.Fprintf(tw, "  %s\t%s\n", words, c.summary)
	})
	tw.Flush()
	fmt.Fprintf(w, "\nRun 'ucsec %s <command> -h' for a command's flags.\n", name)
	if len(g.commands) > 0 && len(g.commands[0].examples) > 0 {
		fmt.Fprintf(w, "\nExample:\n  %s\n", g.commands[0].examples[0])
	}
}

// walk calls fn for each command of g and of its subgroups, in the order
// help lists them, with the words that name the command after prefix
// (such as "sdes parse" for prefix "").
func (g *group) walk(prefix string, fn func(words string, c *command)) {
	for _, c := range g.commands {
		fn(strings.TrimSpace(prefix+" "+c.name), c)
	}
	for _, sub := range g.groups {
		sub.walk(strings.TrimSpace(prefix+" "+sub.name), fn)
	}
}

// printHelp prints the command's help: usage line, description, flags and
// examples.
func (c *command) printHelp(w io.Writer, path string, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s %s\n\n%s\n", path, c.synopsis, strings.TrimSpace(c.help))
	fmt.Fprint(w, "\nFlags:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		name := "--" + f.Name
		if len(f.Name) == 1 {
			name = "-" + f.Name
		}
		if arg != "" {
			name += " " + arg
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, usage)
	})
	fmt.Fprintf(tw, "  -h, --help\tshow this help\n")
	tw.Flush()
	fmt.Fprint(w, "\nExamples:\n")
	for _, ex := range c.examples {
		fmt.Fprintf(w, "  %s\n", ex)
	}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
