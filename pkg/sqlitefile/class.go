package sqlitefile

import (
	"errors"

	sqlite3 "modernc.org/sqlite/lib"
)

// Class is the kind of storage failure an error from SQLite is.
type Class string

// The classes. Full and ReadOnly stop writes only; IO and Corrupt say the
// file cannot be trusted to read either.
const (
	ClassFull     Class = "full"     // SQLITE_FULL: the disk (or a size limit) is full
	ClassReadOnly Class = "readonly" // SQLITE_READONLY: the file or its file system is read-only
	ClassIO       Class = "io"       // SQLITE_IOERR, SQLITE_CANTOPEN: the disk failed an operation
	ClassCorrupt  Class = "corrupt"  // SQLITE_CORRUPT, SQLITE_NOTADB: the file is damaged
)

// ClassOf returns the storage class of err, "" when err is not a storage
// failure (a constraint, a busy timeout, a cancelled context, …).
func ClassOf(err error) Class {
	var coded interface{ Code() int }
	if !errors.As(err, &coded) {
		return ""
	}
	switch coded.Code() & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_FULL:
		return ClassFull
	case sqlite3.SQLITE_READONLY:
		return ClassReadOnly
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
		return ClassIO
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return ClassCorrupt
	}
	return ""
}
