/* placeholder, replaced below */
int luaopen_kdao_bench(void *L);
int luaopen_kdao_bench(void *L) { (void)L; return 0; }
