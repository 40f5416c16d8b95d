package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/vigilhq/vigil/domain"
)

// Content security policies. JSON answers may load nothing and be framed by nothing. The
// pages links in emails open run no script at all; their styles are inline (one <style>
// element and computed bar heights), so styles alone are allowed inline. The API
// reference runs its own script and fetches the document from this origin.
const (
	cspAPI   = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
	cspPages = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	cspDocs  = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
		"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

// hstsValue asks browsers to use https only, for a year, on every subdomain too.
const hstsValue = "max-age=31536000; includeSubDomains"

// securityHeaders sets the headers every response carries, whatever answers it (a route,
// the error handler, or Echo's own 404): no sniffing, no framing, no referrer, isolated
// from other origins' windows and no-cors reads, HSTS when the public URL is https, and a
// content security policy chosen by what the response turns out to be.
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		res := c.Response()
		h := res.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if s.cfg.HSTS {
			h.Set("Strict-Transport-Security", hstsValue)
		}
		path := c.Request().URL.Path
		res.Before(func() {
			csp := cspAPI
			if strings.HasPrefix(h.Get(echo.HeaderContentType), echo.MIMETextHTML) {
				csp = cspPages
				if path == "/docs" || path == "/docs/" {
					csp = cspDocs
				}
			}
			h.Set("Content-Security-Policy", csp)
		})
		return next(c)
	}
}

// corsConfig lets the pages of origins call the API from a browser: with a bearer token
// (no cookies, so no credentials mode), reading the headers a client needs (ETag for
// If-Match, the rate-limit headers, Location of what it created).
func corsConfig(origins []string) middleware.CORSConfig {
	return middleware.CORSConfig{
		AllowOrigins: origins,
		AllowMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
		AllowHeaders: []string{echo.HeaderAuthorization, echo.HeaderContentType, "If-Match", "If-None-Match"},
		ExposeHeaders: []string{"ETag", "Location", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
			echo.HeaderXRequestID, "Content-Disposition"},
		MaxAge: 600,
	}
}

// refuseCrossSiteWrites refuses, with 403, a state-changing request a browser sends from
// another site's page (Sec-Fetch-Site, or Origin against Host): the forms of the pages
// links in emails open, the API, and anything a cookie could ever authorize are out of
// reach of cross-site request forgery. Requests without those headers (scripts, servers)
// and those from the CORS origins pass. The one-click unsubscribe is exempt: RFC 8058 has
// the mail provider post it, from wherever it runs, and the signed token in its URL is
// what authorizes it.
func refuseCrossSiteWrites(trusted []string) echo.MiddlewareFunc {
	cop := http.NewCrossOriginProtection()
	cop.AddInsecureBypassPattern("POST /unsubscribe")
	for _, o := range trusted {
		if err := cop.AddTrustedOrigin(o); err != nil {
			// config.Load has checked every origin; one that fails here is a programming error.
			panic(fmt.Sprintf("httpapi: trusted origin %q: %v", o, err))
		}
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := cop.Check(c.Request()); err != nil {
				return &domain.Error{Code: domain.EFORBIDDEN,
					Message: "A page of another site cannot send this request (cross-origin requests are refused)."}
			}
			return next(c)
		}
	}
}

// refuseUnreadableText answers 400, naming the parameter, when a query, path or form
// parameter holds a NUL byte or bytes that are not UTF-8: no such text is a valid name,
// prompt, filter or token, and PostgreSQL cannot store or compare it.
func refuseUnreadableText(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		query, err := url.ParseQuery(req.URL.RawQuery)
		if err != nil {
			return badText("query", "is not a valid query string")
		}
		if err := checkValues(query, ""); err != nil {
			return err
		}
		values := c.ParamValues()
		for i, name := range c.ParamNames() {
			if i >= len(values) {
				break
			}
			v := values[i]
			if u, err := url.PathUnescape(v); err == nil {
				v = u
			}
			if problem := textProblem(v); problem != "" {
				return badText(name, problem)
			}
		}
		if mt, _, _ := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType)); mt == echo.MIMEApplicationForm {
			form, err := c.FormParams()
			if err != nil {
				return badText("body", "is not a valid form")
			}
			if err := checkValues(form, ""); err != nil {
				return err
			}
		}
		return next(c)
	}
}

func checkValues(values url.Values, prefix string) error {
	for name, vs := range values {
		if problem := textProblem(name); problem != "" {
			return badText("parameter name", problem)
		}
		for _, v := range vs {
			if problem := textProblem(v); problem != "" {
				return badText(prefix+name, problem)
			}
		}
	}
	return nil
}

// textProblem says what makes s unreadable text, or "" when nothing does.
func textProblem(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "must be UTF-8 text"
	case strings.IndexByte(s, 0) >= 0:
		return "must not contain a NUL byte"
	}
	return ""
}

func badText(field, problem string) error {
	return badQuery{&domain.Error{Code: domain.EINVALID, Message: "The request holds text that cannot be read.",
		Fields: map[string]string{field: problem}}}
}

// requireJSON answers 415 when a request body is not declared as JSON (a charset, when
// given, must be UTF-8): a cross-origin form or text/plain POST, which a browser sends
// without asking, never reaches a JSON route.
func requireJSON(r *http.Request) error {
	ct := r.Header.Get(echo.HeaderContentType)
	if ct == "" && r.ContentLength == 0 {
		return nil // no body at all: the decoder says it is empty
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && mt == echo.MIMEApplicationJSON {
		if cs, ok := params["charset"]; !ok || strings.EqualFold(cs, "utf-8") {
			return nil
		}
	}
	return echo.NewHTTPError(http.StatusUnsupportedMediaType,
		"The request body must be JSON, sent with Content-Type: application/json.")
}

// jsonTextProblem walks a JSON document token by token and returns the first member whose
// raw text is not UTF-8 or whose value holds a NUL byte (\u0000), with its path
// ("selector.price", "emails[1]"). The standard decoder would silently turn the first into
// U+FFFD and keep the second, which PostgreSQL then refuses. A document that does not parse
// is left to the decoder to report.
func jsonTextProblem(raw []byte) (field, problem string) {
	type frame struct {
		object  bool
		wantKey bool
		key     string
		index   int
	}
	var stack []frame
	path := func(last string) string {
		var b strings.Builder
		for i, f := range stack {
			if !f.object {
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
				continue
			}
			name := f.key
			if i == len(stack)-1 && last != "" {
				name = last
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(name)
		}
		if b.Len() == 0 {
			return "body"
		}
		return b.String()
	}
	advance := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].object {
				stack[n-1].wantKey = true
			} else {
				stack[n-1].index++
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var prev int64
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", ""
		}
		seg := raw[prev:dec.InputOffset()]
		prev = dec.InputOffset()
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				stack = append(stack, frame{object: d == '{', wantKey: d == '{'})
			default:
				stack = stack[:len(stack)-1]
				advance()
			}
			continue
		}
		str, isString := tok.(string)
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			if !utf8.Valid(seg) || strings.IndexByte(str, 0) >= 0 {
				return path(fmt.Sprintf("%q", str)), "is a member name that is not readable text"
			}
			stack[n-1].key, stack[n-1].wantKey = str, false
			continue
		}
		if isString {
			if !utf8.Valid(seg) {
				return path(""), "must be UTF-8 text"
			}
			if strings.IndexByte(str, 0) >= 0 {
				return path(""), "must not contain a NUL byte"
			}
		}
		advance()
		if len(stack) == 0 {
			return "", ""
		}
	}
}
