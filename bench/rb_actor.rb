# The raw File#flock baseline for the hand-off benchmarks, as a driver-protocol actor in Ruby.
#
#   ruby bench/rb_actor.rb
# Speaks the subset of conformance/PROTOCOL.md that bench/handoff.py uses: hello, open (kind lock:
# the file NAMESPACE/NAME.lock), acquire (untimed only), release, exit; replies carry mono_ns
# (CLOCK_MONOTONIC) right after the acquisition and right before the release, like a driver with the
# `clock` capability. It shows what Ruby itself adds to a hand-off (waking the thread, the GVL).
require "json"

def mono_ns
  Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
end

$stdout.sync = true
file = nil
while (line = $stdin.gets)
  req = JSON.parse(line)
  reply = { "id" => req["id"], "ok" => true }
  case req["op"]
  when "hello"
    reply.merge!("implementation" => "bench-raw-ruby", "protocol" => 1, "pid" => Process.pid,
                 "capabilities" => %w[lock clock])
  when "open"
    file = File.open(File.join(req["namespace"], "#{req["name"]}.lock"), File::RDWR | File::CREAT, 0o600)
    reply["handle"] = "h1"
  when "acquire"
    if req["timeout_ms"]
      reply = { "id" => req["id"], "ok" => false, "error" => "UNSUPPORTED", "message" => "untimed only" }
    else
      file.flock(File::LOCK_EX)
      reply["mono_ns"] = mono_ns
    end
  when "release"
    reply["mono_ns"] = mono_ns
    file.flock(File::LOCK_UN)
  when "exit"
    puts JSON.generate(reply)
    break
  else
    reply = { "id" => req["id"], "ok" => false, "error" => "UNSUPPORTED", "message" => req["op"].to_s }
  end
  puts JSON.generate(reply)
end
