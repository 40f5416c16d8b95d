// Package migrations embeds Vigil's SQL migrations. Each file is a tern migration with an
// up part and a down part separated by "---- create above / drop below ----".
package migrations

import "embed"

// FS holds the migration files, named NNN_description.sql.
//
//go:embed *.sql
var FS embed.FS
