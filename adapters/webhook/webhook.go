// Package webhook delivers notifications to users' endpoints as the Standard Webhooks
// specification says: a JSON body POSTed with webhook-id, webhook-timestamp and
// webhook-signature ("v1," and the base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" keyed by
// the action's secret). Every connection passes the same SSRF check as sources, at dial
// time, and redirects are not followed.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/adapters/source"
	"github.com/vigilhq/vigil/domain/action"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
)

// TimeoutDefault bounds one delivery: connecting, sending and the endpoint's answer.
const TimeoutDefault = 10 * time.Second

// UserAgent is sent with every delivery.
const UserAgent = "Vigil-Webhooks/1.0"

// Config configures a Sender.
type Config struct {
	// BaseURL is PUBLIC_BASE_URL, for the links in the body.
	BaseURL string
	// Guard holds the SSRF rules, as for sources: AllowPrivate, and Allow (default
	// source.NewPublicFilter).
	Guard   source.Config
	Timeout time.Duration // TimeoutDefault when 0
	Now     func() time.Time
}

// Sender delivers webhook notifications; it satisfies app.NotificationSender.
type Sender struct {
	client  *http.Client
	baseURL string
	now     func() time.Time
}

var _ app.NotificationSender = (*Sender)(nil)

// New returns a Sender.
func New(cfg Config) *Sender {
	if cfg.Timeout <= 0 {
		cfg.Timeout = TimeoutDefault
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would hide the real destination from the address check
		DialContext:           source.Dialer(cfg.Guard).DialContext,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		// A burst to one receiver reuses its connections instead of dialling (and checking
		// the address of) a new one for most calls.
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	client := &http.Client{Transport: transport, Timeout: cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &Sender{client: client, baseURL: strings.TrimRight(cfg.BaseURL, "/"), now: cfg.Now}
}

// Body is what a delivery POSTs, in Standard Webhooks' {type, timestamp, data} shape.
type Body struct {
	Type      string    `json:"type"` // "monitor.state_changed" or "vigil.test"
	Timestamp time.Time `json:"timestamp"`
	Data      Data      `json:"data"`
}

// Data is the notification.
type Data struct {
	NotificationID string         `json:"notification_id"`
	Monitor        MonitorJSON    `json:"monitor"`
	Transition     TransitionJSON `json:"transition"`
	Explanation    string         `json:"explanation"`
	Facts          []FactJSON     `json:"facts"`
	Links          LinksJSON      `json:"links"`
}

// MonitorJSON names the monitor.
type MonitorJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Prompt string `json:"prompt"`
}

// TransitionJSON is the state change.
type TransitionJSON struct {
	From string    `json:"from"`
	To   string    `json:"to"`
	At   time.Time `json:"at"`
}

// FactJSON is one fact the evaluation saw.
type FactJSON struct {
	Key        string    `json:"key"`
	Value      any       `json:"value"`
	Unit       string    `json:"unit,omitempty"`
	ObservedAt time.Time `json:"observed_at"`
}

// LinksJSON are the API links of the monitor.
type LinksJSON struct {
	Monitor string `json:"monitor"`
	History string `json:"history"`
}

// Event types.
const (
	TypeStateChanged = "monitor.state_changed"
	TypeTest         = "vigil.test"
)

// Send implements app.NotificationSender.
func (s *Sender) Send(ctx context.Context, d app.Delivery) app.Attempt {
	typ := TypeStateChanged
	if d.Kind == app.KindTest {
		typ = TypeTest
	}
	body, err := json.Marshal(s.body(typ, d))
	if err != nil {
		return app.Attempt{Result: app.ResultFailed, Detail: "The notification could not be encoded."}
	}
	return s.post(ctx, d.Recipient, d.NotificationID, d.Secret, body)
}

func (s *Sender) body(typ string, d app.Delivery) Body {
	monitorURL := s.baseURL + "/api/monitors/" + url.PathEscape(d.MonitorID)
	facts := make([]FactJSON, 0, len(d.Facts))
	for _, f := range d.Facts {
		facts = append(facts, FactJSON{Key: f.Key, Value: factValue(f), Unit: f.Unit, ObservedAt: f.ObservedAt})
	}
	return Body{Type: typ, Timestamp: d.ChangedAt.UTC(), Data: Data{
		NotificationID: d.NotificationID,
		Monitor:        MonitorJSON{ID: d.MonitorID, Name: d.MonitorName, Prompt: d.Prompt},
		Transition:     TransitionJSON{From: string(d.From), To: string(d.To), At: d.ChangedAt.UTC()},
		Explanation:    d.Explanation, Facts: facts,
		Links: LinksJSON{Monitor: monitorURL, History: monitorURL + "/history"},
	}}
}

func factValue(f monitor.Fact) any {
	switch {
	case f.Number != nil:
		return *f.Number
	case f.Text != nil:
		return *f.Text
	case f.Bool != nil:
		return *f.Bool
	}
	return nil
}

// Sign returns the webhook-signature header of a delivery: "v1," and the base64
// HMAC-SHA256 of "<id>.<timestamp>.<body>".
func Sign(secret, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, action.SecretKey(secret))
	mac.Write([]byte(id + "." + strconv.FormatInt(timestamp, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// post delivers one signed body. The webhook-id is the notification's, the same on every
// retry, so receivers can drop repeats.
func (s *Sender) post(ctx context.Context, target, id, secret string, body []byte) app.Attempt {
	ts := s.now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return app.Attempt{Result: app.ResultFailed, Detail: "The webhook URL is not valid."}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(secret, id, ts, body))
	resp, err := s.client.Do(req)
	if err != nil {
		return transportFailure(err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) //nolint:errcheck // drain to reuse the connection
	a := app.Attempt{Result: app.HTTPResult(resp.StatusCode), Code: resp.StatusCode,
		Detail: fmt.Sprintf("The endpoint answered %s.", resp.Status)}
	if text := strings.TrimSpace(string(snippet)); text != "" && a.Result != app.ResultDelivered {
		a.Detail += " " + strings.ToValidUTF8(text, "")
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		a.Detail += " Vigil does not follow redirects: point the action at the final URL."
	}
	return a
}

// transportFailure classifies an error before any answer: a refused address is permanent,
// everything else (timeouts, refused or broken connections, DNS) is retried.
func transportFailure(err error) app.Attempt {
	if errors.Is(err, source.ErrForbiddenAddress) {
		return app.Attempt{Result: app.ResultFailed, Detail: "The webhook URL points to a private or local address, which Vigil may not call."}
	}
	var timeout interface{ Timeout() bool }
	if errors.As(err, &timeout) && timeout.Timeout() {
		return app.Attempt{Result: app.ResultRetry, Detail: "The endpoint did not answer in time."}
	}
	return app.Attempt{Result: app.ResultRetry, Detail: "The endpoint could not be reached."}
}
