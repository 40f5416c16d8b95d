package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/streams"
)

const dlqUsage = `usage: vigil dlq list    [--stream S] [--since D] [--limit N]
       vigil dlq show    SEQ
       vigil dlq replay  (--id SEQ | --stream S | --since D | --all)
       vigil dlq purge   (--id SEQ | --stream S | --since D | --all)

--since takes a duration back from now (90m, 24h) or a time (2026-12-01T09:00:00Z).
Replay publishes each message again to its original subject and removes it from DEADLETTER.`

// runDLQ implements `vigil dlq`: operators' view of the dead letter stream.
func runDLQ(ctx context.Context, cfg config.Config, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError(dlqUsage)
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("dlq "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	stream := fs.String("stream", "", "only dead letters from this stream (MONITORS, EVALUATIONS, STATES, NOTIFICATIONS)")
	since := fs.String("since", "", "only dead letters since this duration ago or time")
	id := fs.Uint64("id", 0, "only the dead letter with this DEADLETTER sequence")
	limit := fs.Int("limit", 100, "list at most this many")
	all := fs.Bool("all", false, "replay or purge every dead letter")
	var seqArg string
	if cmd == "show" {
		if len(rest) != 1 {
			return usageError(dlqUsage)
		}
		seqArg, rest = rest[0], nil
	}
	if err := fs.Parse(rest); err != nil {
		return fmt.Errorf("%v\n%s", err, dlqUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q\n%s", fs.Arg(0), dlqUsage)
	}
	f := streams.DeadLetterFilter{Stream: strings.ToUpper(*stream), Seq: *id}
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			return err
		}
		f.Since = t
	}
	if cmd == "list" {
		f.Limit = *limit
	}
	if (cmd == "replay" || cmd == "purge") && !*all && f.Stream == "" && f.Since.IsZero() && f.Seq == 0 {
		return fmt.Errorf("dlq %s: say which dead letters (--id, --stream, --since) or --all\n%s", cmd, dlqUsage)
	}

	url := cfg.NATSURL
	if url == "" {
		url = "nats://" + cfg.NATSEmbeddedAddr
	}
	nc, js, err := streams.Connect(url, "vigil-dlq")
	if err != nil {
		return fmt.Errorf("%w (with NATS_URL empty, `vigil all` or `vigil nats` must be running)", err)
	}
	defer nc.Close()
	dl := streams.NewDeadLetters(js)

	switch cmd {
	case "list":
		list, err := dl.List(ctx, f)
		if err != nil {
			return err
		}
		printDeadLetters(out, list)
	case "show":
		var seq uint64
		if _, err := fmt.Sscan(seqArg, &seq); err != nil || seq == 0 {
			return fmt.Errorf("dlq show: %q is not a DEADLETTER sequence\n%s", seqArg, dlqUsage)
		}
		d, err := dl.Get(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("dlq show: no dead letter %d", seq)
		}
		if err != nil {
			return err
		}
		printDeadLetter(out, d)
	case "replay":
		n, err := dl.Replay(ctx, f)
		fmt.Fprintf(out, "replayed %d dead letters\n", n)
		return err
	case "purge":
		n, err := dl.Purge(ctx, f)
		fmt.Fprintf(out, "purged %d dead letters\n", n)
		return err
	default:
		return fmt.Errorf("dlq: unknown command %q\n%s", cmd, dlqUsage)
	}
	return nil
}

// parseSince reads a duration back from now or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (90m, 24h) or a time (2026-12-01T09:00:00Z)", s)
}

func printDeadLetters(out io.Writer, list []streams.DeadLetter) {
	if len(list) == 0 {
		fmt.Fprintln(out, "no dead letters")
		return
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tDEAD AT\tSTREAM\tCONSUMER\tREASON\tDELIVERIES\tEVENT\tERROR")
	for _, d := range list {
		errText := d.Error
		if len(errText) > 60 {
			errText = errText[:57] + "..."
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\t%s %s\t%s\n", d.Seq, d.Time.UTC().Format(time.RFC3339), d.Stream, d.Consumer,
			d.Reason, d.Deliveries, d.EventType, d.EventID, errText)
	}
	w.Flush() //nolint:errcheck // printing to the terminal
}

func printDeadLetter(out io.Writer, d streams.DeadLetter) {
	fmt.Fprintf(out, "seq:         %d\ndead at:     %s\nfrom:        %s seq %d (consumer %s)\nsubject:     %s\n",
		d.Seq, d.Time.UTC().Format(time.RFC3339Nano), d.Stream, d.StreamSeq, d.Consumer, d.Subject)
	fmt.Fprintf(out, "reason:      %s after %d deliveries\nerror:       %s\nevent:       %s %s\nheaders:\n",
		d.Reason, d.Deliveries, d.Error, d.EventType, d.EventID)
	keys := make([]string, 0, len(d.Header))
	for k := range d.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(out, "  %s: %s\n", k, strings.Join(d.Header[k], ", "))
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, d.Data, "", "  ") == nil {
		fmt.Fprintf(out, "data:\n%s\n", pretty.String())
	} else {
		fmt.Fprintf(out, "data:\n%q\n", d.Data)
	}
}

// usageError is a command's usage text returned as its error: several lines, ending as
// prose does, which error strings otherwise should not.
type usageError string

func (u usageError) Error() string { return string(u) }
