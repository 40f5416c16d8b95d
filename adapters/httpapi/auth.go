package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/domain/account"
)

// BodyLimit is the largest JSON request body the account API reads: far above any valid
// request, small enough that nobody can make the server buffer much.
const BodyLimit = 64 << 10

// Accounts is what the /api/auth and /api/me handlers need; *account.Service satisfies it.
// Methods return *domain.Error values that the error handler maps to statuses.
type Accounts interface {
	Register(ctx context.Context, in account.RegisterInput, cl account.Client) (*account.Auth, error)
	Login(ctx context.Context, in account.LoginInput, cl account.Client) (*account.Auth, error)
	Refresh(ctx context.Context, refreshToken string, cl account.Client) (*account.Auth, error)
	Logout(ctx context.Context, refreshToken string, cl account.Client) error
	GetMe(ctx context.Context, userID string) (*account.User, error)
	UpdateMe(ctx context.Context, userID, sessionID string, in account.ProfileUpdate, cl account.Client) (*account.User, error)
	DeleteMe(ctx context.Context, userID, sessionID, currentPassword string, cl account.Client) error
	ListAudit(ctx context.Context, userID string, limit int, cursor string) (account.AuditPage, error)
}

// registerAccountRoutes serves /api/auth/*, /api/me* and /.well-known/jwks.json.
func (s *Server) registerAccountRoutes(e *echo.Echo) {
	e.GET("/.well-known/jwks.json", s.jwks)
	auth := e.Group("/api/auth")
	auth.POST("/register", s.register)
	auth.POST("/login", s.login)
	auth.POST("/refresh", s.refresh)
	auth.POST("/logout", s.logout)
	s.registerPasswordReset(auth) // password reset
	s.registerGoogle(auth)        // google sign-in
	me := e.Group("/api/me", s.authenticated)
	me.GET("", s.getMe)
	me.PATCH("", s.patchMe)
	me.DELETE("", s.deleteMe)
	me.GET("/audit", s.listMyAudit)
}

// UserJSON is a user as the API shows it; never the password hash.
type UserJSON struct {
	ID                   string     `json:"id"`
	Email                string     `json:"email"`
	Name                 string     `json:"name"`
	Role                 string     `json:"role"`
	Timezone             string     `json:"timezone"`
	DigestHour           int        `json:"digest_hour"`
	NotificationsEnabled bool       `json:"notifications_enabled"`
	EmailVerified        bool       `json:"email_verified"`
	HasPassword          bool       `json:"has_password"`
	LastLoginAt          *time.Time `json:"last_login_at"`
	UnsubscribedAt       *time.Time `json:"unsubscribed_at"`
	CreatedAt            time.Time  `json:"created_at"`
	UpdatedAt            time.Time  `json:"updated_at"`
}

func userJSON(u *account.User) UserJSON {
	return UserJSON{ID: u.ID, Email: u.Email, Name: u.Name, Role: string(u.Role), Timezone: u.Timezone,
		DigestHour: u.DigestHour, NotificationsEnabled: u.NotificationsEnabled, EmailVerified: u.EmailVerifiedAt != nil,
		HasPassword: u.HasPassword(), LastLoginAt: u.LastLoginAt, UnsubscribedAt: u.UnsubscribedAt, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// TokenResponse is the body of register, login and refresh.
type TokenResponse struct {
	User         UserJSON `json:"user"`
	AccessToken  string   `json:"access_token"`
	RefreshToken string   `json:"refresh_token"`
	TokenType    string   `json:"token_type"`
	ExpiresIn    int      `json:"expires_in"` // seconds until the access token expires
}

func (s *Server) tokenResponse(c echo.Context, status int, a *account.Auth) error {
	noStore(c)
	return c.JSON(status, TokenResponse{User: userJSON(a.User), AccessToken: a.AccessToken, RefreshToken: a.RefreshToken,
		TokenType: "Bearer", ExpiresIn: int(a.ExpiresIn / time.Second)})
}

func clientOf(c echo.Context) account.Client {
	return account.Client{IP: c.RealIP(), UserAgent: c.Request().UserAgent()}
}

type registerRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

func (s *Server) register(c echo.Context) error {
	var req registerRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	a, err := s.cfg.Accounts.Register(c.Request().Context(),
		account.RegisterInput{Email: req.Email, Password: req.Password, Name: req.Name}, clientOf(c))
	if err != nil {
		return err
	}
	return s.tokenResponse(c, http.StatusCreated, a)
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (s *Server) login(c echo.Context) error {
	var req loginRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	a, err := s.cfg.Accounts.Login(c.Request().Context(), account.LoginInput{Email: req.Email, Password: req.Password}, clientOf(c))
	if err != nil {
		return err
	}
	return s.tokenResponse(c, http.StatusOK, a)
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *Server) refresh(c echo.Context) error {
	var req refreshRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	a, err := s.cfg.Accounts.Refresh(c.Request().Context(), req.RefreshToken, clientOf(c))
	if err != nil {
		return err
	}
	return s.tokenResponse(c, http.StatusOK, a)
}

func (s *Server) logout(c echo.Context) error {
	var req refreshRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.cfg.Accounts.Logout(c.Request().Context(), req.RefreshToken, clientOf(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) jwks(c echo.Context) error {
	b, err := s.cfg.AccessTokens.JWKS()
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
}

// decodeJSON reads one JSON object of at most BodyLimit bytes into v. A body not sent as
// JSON is a 415; unknown fields, wrong types, malformed JSON, trailing data and text that
// is not UTF-8 or holds a NUL byte are 400s naming the problem; a larger body is a 413.
func decodeJSON(c echo.Context, v any) error {
	if err := requireJSON(c.Request()); err != nil {
		return err
	}
	raw, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, BodyLimit))
	if err != nil {
		return jsonError(err)
	}
	if field, problem := jsonTextProblem(raw); field != "" {
		return badText(field, problem)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err)
		}
		return echo.NewHTTPError(http.StatusBadRequest, "The request body must be a single JSON object.")
	}
	return nil
}

func jsonError(err error) error {
	var (
		maxErr  *http.MaxBytesError
		typeErr *json.UnmarshalTypeError
		synErr  *json.SyntaxError
	)
	switch {
	case errors.As(err, &maxErr):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge,
			fmt.Sprintf("The request body is larger than %d KiB.", BodyLimit>>10))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("Unknown field %s.", field))
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return echo.NewHTTPError(http.StatusBadRequest, "The request body must be a JSON object.")
		}
		return echo.NewHTTPError(http.StatusBadRequest,
			fmt.Sprintf("Field %q must be a JSON %s.", typeErr.Field, jsonKind(typeErr.Type.Kind().String())))
	case errors.As(err, &synErr), errors.Is(err, io.ErrUnexpectedEOF):
		return echo.NewHTTPError(http.StatusBadRequest, "The request body is not valid JSON.")
	case errors.Is(err, io.EOF):
		return echo.NewHTTPError(http.StatusBadRequest, "The request body is empty; send a JSON object.")
	}
	return echo.NewHTTPError(http.StatusBadRequest, "The request body is not valid JSON.")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "number"
	case "slice", "array":
		return "array"
	}
	return "object"
}
