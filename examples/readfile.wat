;; readfile: answers with the content of the data file its text input names
;; (e.g. "data://.my/notes/hello.txt", or ".my/notes/hello.txt").
;; It reads the file with algohub.data_read, acting as the call does: `.my` is
;; the caller's account (the owner's in a sudo call), and the owner's
;; `my_algos` collections are readable too. When the read fails (no such file,
;; not allowed), the message the host gives back becomes the algorithm's error.
;; The result has the input's type (text), so the file must be UTF-8 text.
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "algohub" "data_read" (func $data_read (param i32 i32) (result i32)))
  (import "algohub" "reply_len" (func $reply_len (result i32)))
  (import "algohub" "reply_read" (func $reply_read (param i32 i32) (result i32)))
  (import "algohub" "set_error" (func $set_error (param i32 i32)))
  ;; 0..16: an iovec and a byte count; 1024..2048: the path; 2048: a message;
  ;; 4096..: the reply.
  (memory (export "memory") 1)
  (data (i32.const 2048) "the file does not fit in memory here.")
  (func (export "_start")
    (local $path_len i32)
    (local $failed i32)
    (local $len i32)
    (local $need i32)
    ;; The path: one read of stdin into 1024..2048.
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 1024))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (local.set $path_len (i32.load (i32.const 8)))
    ;; 0 = the file is the reply; 1 = the reply is an error message.
    (local.set $failed (call $data_read (i32.const 1024) (local.get $path_len)))
    (local.set $len (call $reply_len))
    ;; Grow the memory until the reply fits at 4096.
    (local.set $need
      (i32.sub
        (i32.div_u (i32.add (i32.add (local.get $len) (i32.const 4096)) (i32.const 65535))
                   (i32.const 65536))
        (memory.size)))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then
        (if (i32.lt_s (memory.grow (local.get $need)) (i32.const 0))
          (then
            (call $set_error (i32.const 2048) (i32.const 37))
            (return)))))
    (drop (call $reply_read (i32.const 4096) (local.get $len)))
    (if (local.get $failed)
      (then
        (call $set_error (i32.const 4096) (local.get $len))
        (return)))
    ;; The result: the file, written to stdout.
    (i32.store (i32.const 0) (i32.const 4096))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
)
