"""Studies: a TOML spec (:mod:`.spec`) becomes cells (:mod:`.cells`), run resumably on a
local pool or Ray (:mod:`.runner`), summarised (:mod:`.report`) and plotted (:mod:`.plots`)."""
