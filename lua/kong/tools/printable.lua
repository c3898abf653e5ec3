-- kong.tools.printable: the metatable printing a field map as "k=v k2=v2" (keys sorted,
-- arrays joined by ","), the one kdao's error objects use for `tbl`.
return require("kdao").printable_mt
