// Built into web/dist and served by the daemon itself at "/".
import { defineConfig } from 'vite';

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    sourcemap: false,
    // one script, one stylesheet: the CSP allows only 'self'
    modulePreload: { polyfill: false },
  },
});
