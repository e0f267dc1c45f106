;; fail: an algorithm that always reports an error.
;; It prints a line (its printed output, returned with stdout=true to the owner's
;; side) and reports a JSON error through algohub.set_error; the call answers
;; HTTP 200 with {"error": {"message": "...", "error_type": "ValueError"}}.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "algohub" "set_error" (func $set_error (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "checking the input...\n")
  (data (i32.const 128) "{\"message\": \"the input is not acceptable\", \"error_type\": \"ValueError\"}")
  (func (export "_start")
    ;; iovec at 0: {ptr 64, len 22}; bytes written at 8.
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 22))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $set_error (i32.const 128) (i32.const 70)))
)
