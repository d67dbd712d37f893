export declare const INSTALL_SCENARIOS: ReadonlyArray<{ readonly name: string; readonly why: string; readonly dependencies: Readonly<Record<string, string>> }>;
