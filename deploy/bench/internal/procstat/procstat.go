// Package procstat reads what the bench measures of processes from /proc:
// CPU time per cluster process, the machine's busy time, resident memory.
// Without /proc the readings are empty or zero.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/<pid>/stat's times: USER_HZ, 100 on
// every Linux this runs on.
const clockTick = 10 * time.Millisecond

// Times is the CPU time (user + system) each process has used, keyed by
// "<park> <binary>" ("bench-park-02 gateway", "bench-park-01 consul"), the
// bench itself as "bench". Without /proc it is empty.
type Times map[string]time.Duration

// ReadCPU reads the CPU times of pids and of the bench itself.
func ReadCPU(pids []int) Times {
	out := Times{}
	if d, ok := procCPU("self"); ok {
		out["bench"] = d
	}
	for _, pid := range pids {
		d, ok := procCPU(strconv.Itoa(pid))
		if !ok {
			continue
		}
		out[procLabel(pid)] += d
	}
	return out
}

// procCPU reads utime + stime of /proc/<pid>/stat.
func procCPU(pid string) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// fields are counted after its closing one.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * clockTick, true
}

// procLabel names a cluster process by its park (-park, or -node for a
// Consul agent) and binary.
func procLabel(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return strconv.Itoa(pid)
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	name := filepath.Base(args[0])
	if strings.HasPrefix(name, "consul") {
		name = "consul"
	}
	for i, a := range args[:len(args)-1] {
		if a == "-park" || a == "-node" {
			return args[i+1] + " " + name
		}
	}
	return name
}

// Since is the CPU used between before and t.
func (t Times) Since(before Times) Times {
	out := Times{}
	for k, d := range t {
		out[k] = d - before[k]
	}
	return out
}

// Sum adds the times of the labels that start with prefix.
func (t Times) Sum(prefix string) time.Duration {
	var d time.Duration
	for k, v := range t {
		if strings.HasPrefix(k, prefix) {
			d += v
		}
	}
	return d
}

// Gateways adds the times of every park's gateway but except's.
func (t Times) Gateways(except string) time.Duration {
	var d time.Duration
	for k, v := range t {
		if strings.HasSuffix(k, " gateway") && k != except+" gateway" {
			d += v
		}
	}
	return d
}

// Top lists the n largest, "label 1.2 s".
func (t Times) Top(n int) string {
	type kv struct {
		k string
		d time.Duration
	}
	var all []kv
	for k, d := range t {
		all = append(all, kv{k, d})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].d > all[j].d })
	var parts []string
	for _, e := range all[:min(n, len(all))] {
		parts = append(parts, fmt.Sprintf("%s %.1f s", e.k, e.d.Seconds()))
	}
	return strings.Join(parts, ", ")
}

// MachineBusy is the CPU time every process on the machine has used
// (all of /proc/stat's first line but idle and iowait): with the
// cluster's own, it shows how much went to other work.
func MachineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, s := range f[1:] {
		n, _ := strconv.ParseInt(s, 10, 64)
		if i != 3 && i != 4 && i < 8 { // idle, iowait; guest times are in user already
			busy += n
		}
	}
	return time.Duration(busy) * clockTick
}

// IdleCPU measures, for d, the CPU the cluster's processes use with no
// load from the bench: their background work (health checks, Consul,
// heartbeats, polling).
func IdleCPU(pids []int, d time.Duration) (cluster, machine time.Duration) {
	cpu0, busy0 := ReadCPU(pids), MachineBusy()
	time.Sleep(d)
	t := ReadCPU(pids).Since(cpu0)
	return t.Sum("") - t["bench"], MachineBusy() - busy0
}

// ResidentMB is the resident memory of pids together, in MiB (0 without
// /proc).
func ResidentMB(pids []int) int {
	kb := 0
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				n, _ := strconv.Atoi(f[1])
				kb += n
			}
		}
	}
	return kb / 1024
}
