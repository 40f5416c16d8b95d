package emailtpl_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/emailtpl"
)

func TestRecipientConfirm(t *testing.T) {
	t.Parallel()
	r := setup(t)
	link := "https://vigil.example/confirm-recipient?token=abc.def"
	email, err := r.RecipientConfirm(emailtpl.RecipientConfirm{OwnerName: "<b>Ann</b>", OwnerEmail: "ann@example.com",
		ConfirmURL: link, ExpiresIn: 7 * 24 * time.Hour})
	require.NoError(t, err)
	assert.Equal(t, "Confirm that you want Vigil notifications", email.Subject)
	assert.Equal(t, `Do you want these notifications?

<b>Ann</b> (ann@example.com) asked Vigil to email this address when their monitors change state.

Vigil sends nothing to you unless you confirm. To confirm, open this link:

https://vigil.example/confirm-recipient?token=abc.def

The link expires in 7 days. If you do not know this person, ignore this email.

--
You receive this email because a Vigil user entered this address.
`, email.Text)
	assert.Contains(t, email.HTML, `href="`+link+`"`)
	assert.Contains(t, email.HTML, "&lt;b&gt;Ann&lt;/b&gt; (ann@example.com)")
	assert.NotContains(t, email.HTML, "Unsubscribe")

	for _, d := range []emailtpl.RecipientConfirm{
		{OwnerEmail: "ann@example.com", ConfirmURL: "/confirm-recipient", ExpiresIn: time.Hour},
		{ConfirmURL: link, ExpiresIn: time.Hour},
		{OwnerEmail: "ann@example.com", ConfirmURL: link},
	} {
		_, err := r.RecipientConfirm(d)
		assert.ErrorIs(t, err, domain.ErrInvalid, "%+v", d)
	}
}

func TestWelcome(t *testing.T) {
	t.Parallel()
	r := setup(t)
	email, err := r.Welcome(emailtpl.Welcome{RecipientName: "Ann", ConfirmURL: "https://vigil.example/verify-email?token=a.b", ExpiresIn: 7 * 24 * time.Hour})
	require.NoError(t, err)
	assert.Equal(t, "Welcome to Vigil: confirm your email", email.Subject)
	assert.Equal(t, `Hi Ann,

Welcome to Vigil

Tell Vigil in plain words what to watch, such as "tell me when the price on this page drops below $80", and it checks for you and emails you when it happens.

Please confirm that this address is yours by opening this link:

https://vigil.example/verify-email?token=a.b

The link expires in 7 days.

--
You receive this email because someone registered a Vigil account with this address. If it was not you, ignore it.
`, email.Text)
	assert.Contains(t, email.HTML, `href="https://vigil.example/verify-email?token=a.b"`)
	_, err = r.Welcome(emailtpl.Welcome{ConfirmURL: "/relative", ExpiresIn: time.Hour})
	assert.ErrorIs(t, err, domain.ErrInvalid)
}
