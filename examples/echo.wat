;; echo: the algohub template algorithm.
;; Copies its input (stdin) to its result (stdout); the result keeps the input's
;; content type because the module never calls algohub.set_content_type.
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  ;; 0..8: one iovec {ptr, len}; 8..12: bytes read/written; 1024..66560: buffer.
  (memory (export "memory") 2)

  (func (export "_start")
    (local $n i32)
    (local $at i32)
    (block $eof
      (loop $read
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 65536))
        (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
          (then (call $proc_exit (i32.const 1))))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $eof (i32.eqz (local.get $n)))
        (local.set $at (i32.const 1024))
        (loop $write
          (i32.store (i32.const 0) (local.get $at))
          (i32.store (i32.const 4) (local.get $n))
          (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))
            (then (call $proc_exit (i32.const 1))))
          (local.set $at (i32.add (local.get $at) (i32.load (i32.const 8))))
          (local.set $n (i32.sub (local.get $n) (i32.load (i32.const 8))))
          (br_if $write (local.get $n)))
        (br $read))))
)
