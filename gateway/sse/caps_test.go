package sse

import (
	"encoding/json"
	"net/http/httptest"
	"sync"
	"testing"
)

func TestCaps(t *testing.T) {
	c := &Caps{Max: 2}
	r1, ok1 := c.Acquire("tok1")
	r2, ok2 := c.Acquire("tok1")
	if !ok1 || !ok2 {
		t.Fatal("the first two streams were refused")
	}
	if _, ok := c.Acquire("tok1"); ok {
		t.Error("a third stream of tok1 was allowed")
	}
	if _, ok := c.Acquire("tok2"); !ok {
		t.Error("tok2 was refused for tok1's streams")
	}
	r1()
	r1() // releasing twice frees one stream, not two
	if c.Open("tok1") != 1 {
		t.Errorf("open after one release = %d, want 1", c.Open("tok1"))
	}
	if _, ok := c.Acquire("tok1"); !ok {
		t.Error("a freed slot was not reusable")
	}
	if _, ok := c.Acquire("tok1"); ok {
		t.Error("over the cap again")
	}
	r2()

	// The answer: 429, Retry-After, the standard error JSON.
	rec := httptest.NewRecorder()
	c.Refuse(rec, "this token")
	var body struct {
		Error struct{ Code, Message string }
	}
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "10" || body.Error.Code != "too_many_requests" {
		t.Errorf("refusal: %d, Retry-After %q, %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}

	// Concurrent holders never exceed the cap.
	c = &Caps{Max: 3}
	var mu sync.Mutex
	held, most := 0, 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, ok := c.Acquire("k")
			if !ok {
				return
			}
			mu.Lock()
			held++
			most = max(most, held)
			mu.Unlock()
			mu.Lock()
			held--
			mu.Unlock()
			release()
		}()
	}
	wg.Wait()
	if most > 3 || c.Open("k") != 0 {
		t.Errorf("at most %d held (cap 3), %d left open", most, c.Open("k"))
	}
	// The zero value has no limit.
	var unlimited Caps
	for range 100 {
		if _, ok := unlimited.Acquire("k"); !ok {
			t.Fatal("the zero Caps refused")
		}
	}
}
