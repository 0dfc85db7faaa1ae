/** kpsim's version, as package.json says (kept in step by a test). */
export const VERSION = '0.1.0';
