// Package sendgrid reads SendGrid's Event Webhook: a JSON array of events, signed with
// ECDSA P-256 over the timestamp header followed by the raw body, verified with the public
// key SendGrid shows in its mail settings.
package sendgrid

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/app"
)

// Headers SendGrid signs with.
const (
	HeaderSignature = "X-Twilio-Email-Event-Webhook-Signature"
	HeaderTimestamp = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// ToleranceDefault is how far a request's timestamp may be from now, so a captured
// request cannot be replayed later.
const ToleranceDefault = 10 * time.Minute

// ErrBadSignature is returned for a request that is not signed by the configured key, or
// whose timestamp is too far from now.
var ErrBadSignature = errors.New("sendgrid: bad signature")

// Verifier checks signed event requests.
type Verifier struct {
	key *ecdsa.PublicKey
}

// NewVerifier parses the verification key: the base64 of its DER (as SendGrid shows it)
// or PEM.
func NewVerifier(publicKey string) (*Verifier, error) {
	raw := strings.TrimSpace(publicKey)
	var der []byte
	if block, _ := pem.Decode([]byte(raw)); block != nil {
		der = block.Bytes
	} else {
		b, err := base64.StdEncoding.DecodeString(raw)
		if err != nil {
			return nil, errors.New("sendgrid: the public key is neither PEM nor base64")
		}
		der = b
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("sendgrid: parse public key: %w", err)
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("sendgrid: the public key is not an ECDSA key")
	}
	return &Verifier{key: key}, nil
}

// Verify checks a request's signature header over its timestamp header and body.
func (v *Verifier) Verify(signature, timestamp string, body []byte, now time.Time) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > ToleranceDefault || d < -ToleranceDefault {
		return ErrBadSignature
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return ErrBadSignature
	}
	h := sha256.New()
	h.Write([]byte(timestamp))
	h.Write(body)
	if !ecdsa.VerifyASN1(v.key, h.Sum(nil), sig) {
		return ErrBadSignature
	}
	return nil
}

type event struct {
	Email     string  `json:"email"`
	Event     string  `json:"event"`
	Reason    string  `json:"reason"`
	Response  string  `json:"response"`
	Timestamp float64 `json:"timestamp"`
	SMTPID    string  `json:"smtp-id"`
}

// messageID finds the notification id in the Message-ID Vigil set: <id@vigil>.
var messageID = regexp.MustCompile(`^<?([0-9a-fA-F-]{36})@vigil>?$`)

// MaxEvents bounds one request (SendGrid batches up to a few hundred).
const MaxEvents = 1000

// Parse reads the events of a request body.
func Parse(body []byte) ([]app.EmailEvent, error) {
	var raw []event
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("sendgrid: the body is not a JSON array of events: %w", err)
	}
	if len(raw) > MaxEvents {
		return nil, fmt.Errorf("sendgrid: %d events in one request, at most %d", len(raw), MaxEvents)
	}
	out := make([]app.EmailEvent, 0, len(raw))
	for _, e := range raw {
		ev := app.EmailEvent{Type: e.Event, Email: e.Email, Reason: strings.TrimSpace(e.Reason + " " + e.Response),
			At: time.Unix(int64(e.Timestamp), 0).UTC()}
		if m := messageID.FindStringSubmatch(strings.TrimSpace(e.SMTPID)); m != nil {
			ev.NotificationID = strings.ToLower(m[1])
		}
		out = append(out, ev)
	}
	return out, nil
}

// Source reads SendGrid's event requests; it satisfies httpapi.EmailEventSource.
type Source struct {
	Verifier *Verifier
}

// Read verifies a request and parses its events: EUNAUTHORIZED for a request SendGrid did
// not sign (or signed too long ago), EINVALID for a body that is not its events.
func (s Source) Read(header http.Header, body []byte, now time.Time) ([]app.EmailEvent, error) {
	if err := s.Verifier.Verify(header.Get(HeaderSignature), header.Get(HeaderTimestamp), body, now); err != nil {
		return nil, &domain.Error{Code: domain.EUNAUTHORIZED, Message: "The request is not signed by SendGrid, or not recently.", Err: err}
	}
	events, err := Parse(body)
	if err != nil {
		return nil, &domain.Error{Code: domain.EINVALID, Message: "The body is not a JSON array of SendGrid events.", Err: err}
	}
	return events, nil
}
