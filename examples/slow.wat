;; slow: an algorithm that never finishes (a busy loop). The call's wall-clock
;; deadline (?timeout=SECONDS) or its fuel stops it; the server and other calls
;; are not affected, and the caller gets an AlgorithmTimeoutError.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever
      (br $forever)))
)
