package session

// SafeReturn is safeReturn, for the tests.
var SafeReturn = safeReturn
