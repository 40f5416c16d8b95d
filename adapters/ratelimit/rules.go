package ratelimit

import "time"

// Rules is the set of limits Vigil enforces. Rule names are stored with the counters:
// renaming one resets its counters once, which is harmless.
type Rules struct {
	// LoginIP limits login attempts per client IP, successful or not.
	LoginIP Rule
	// LoginFailuresAccount is the failure budget per target email, whatever the IP.
	LoginFailuresAccount Rule
	// RegisterIP limits account creation per client IP.
	RegisterIP Rule
	// ForgotIP limits password-reset requests per client IP.
	ForgotIP Rule
	// ForgotEmail limits password-reset emails per target address.
	ForgotEmail Rule
	// ResetIP limits password-reset submissions (token + new password) per client IP.
	ResetIP Rule
	// API is the general limit per caller (user or API key) on the rest of /api.
	API Rule
	// EvaluateNow limits on-demand evaluations per caller.
	EvaluateNow Rule
	// ValidateMonitor limits validations (a classification, a fetch and AI calls) per user.
	ValidateMonitor Rule
	// CreateMonitor limits monitor creations (each classified by an AI provider) per user.
	CreateMonitor Rule
	// ActionTest limits the sample notifications an action test sends, per caller.
	ActionTest Rule
}

// Defaults returns the limits Vigil uses. Each number is the most a legitimate client
// plausibly needs, with room to spare, and no more.
func Defaults() Rules {
	return Rules{
		// 20 a minute: a person retyping a password, or a few people behind one NAT, never
		// come close; a password-spraying script from one address is cut to 1,200 an hour
		// and, with bcrypt at cost 12, cannot use the login endpoint to burn our CPU.
		LoginIP: Rule{Name: "login-ip", Limit: 20, Window: time.Minute},
		// 100 failures an hour per account, the ceiling OWASP ASVS (V2.2.1) sets, held even
		// against rotating IPs because the key is the target email. It is a soft lock: the
		// owner can still reset the password, and it lifts within the hour.
		LoginFailuresAccount: Rule{Name: "login-fail-account", Limit: 100, Window: time.Hour},
		// 10 an hour: a family or office signing up together fits; bulk account creation
		// (spam, free-tier farming, beta allowlist probing) does not.
		RegisterIP: Rule{Name: "register-ip", Limit: 10, Window: time.Hour},
		// 5 per 15 minutes per IP: forgot always answers 202, so the limit is what stops it
		// being used to mail-bomb many addresses or to time account existence at scale.
		ForgotIP: Rule{Name: "forgot-ip", Limit: 5, Window: 15 * time.Minute},
		// 3 an hour per address: a user whose mail is slow can ask again twice; a victim
		// cannot be flooded with reset emails, and our sender reputation is protected.
		ForgotEmail: Rule{Name: "forgot-email", Limit: 3, Window: time.Hour},
		// 10 per 15 minutes per IP: enough for typos and password-policy rejections; reset
		// tokens are 256-bit so guessing is hopeless anyway, this bounds the noise.
		ResetIP: Rule{Name: "reset-ip", Limit: 10, Window: 15 * time.Minute},
		// 600 a minute (10/s) per caller: a dashboard polling many monitors or a busy
		// integration fits; a runaway loop is stopped before it hurts other tenants.
		API: Rule{Name: "api-caller", Limit: 600, Window: time.Minute},
		// 10 a minute per caller: each one runs a fetch and an AI call that costs money and
		// hits a third-party site, so it is the one endpoint whose limit is about cost.
		EvaluateNow: Rule{Name: "evaluate-now-caller", Limit: 10, Window: time.Minute},
		// 30 a minute per user, over all their keys: a person trying phrasings in a form,
		// even one that validates as they type after a pause, stays under it; a script
		// using validate as a free fetch-and-AI service does not. Each costs a
		// classification, a fetch of someone's site and up to three AI calls.
		ValidateMonitor: Rule{Name: "validate-monitor-user", Limit: 30, Window: time.Minute},
		// 60 an hour per user: an import of a few dozen monitors fits (the monitor quota
		// bounds what is kept anyway); creating and deleting in a loop, each creation an AI
		// classification, does not.
		CreateMonitor: Rule{Name: "create-monitor-user", Limit: 60, Window: time.Hour},
		// 10 an hour per caller: enough to set up and debug a few endpoints; each test mails
		// or calls someone, so it must not become a way to flood an address or a server.
		ActionTest: Rule{Name: "action-test-caller", Limit: 10, Window: time.Hour},
	}
}

// All returns every rule, for validating them at start-up or listing them.
func (r Rules) All() []Rule {
	return []Rule{r.LoginIP, r.LoginFailuresAccount, r.RegisterIP, r.ForgotIP, r.ForgotEmail,
		r.ResetIP, r.API, r.EvaluateNow, r.ValidateMonitor, r.CreateMonitor, r.ActionTest}
}
