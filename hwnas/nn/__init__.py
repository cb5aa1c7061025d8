"""Building blocks both tasks share, below both: self-attention with its
streaming masks (attention), feed-forward, time convolution and caches
(common), the acoustic front-end -- STFT, mel filterbank, DCT (frontend) --,
a device graph's input spec (spec), and the operator kinds and columns of the
analytic cost model (costs). Nothing here names a task."""
