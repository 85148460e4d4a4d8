extension JobSpec {
    /// This spec with `{a|b}` alternatives and `__wildcards__` of its prompt and negative prompt
    /// expanded (`PromptTemplate`), drawn from its seed (the prompt first, then the negative
    /// prompt, from one stream), so a rerun gives the same prompts. Requires `seed`; the
    /// intake and `--oneshot` call it right after ``resolvingSeed()``. The expanded prompt is
    /// what the job runs on and what its images record; `sourceText` keeps the template.
    public func expandingTemplates(wildcards: WildcardLibrary?) throws -> JobSpec {
        var expanded = self
        if var grid {
            grid.cells = try grid.cells.map { try $0.expandingTemplates(wildcards: wildcards) }
            expanded.grid = grid
        }
        guard PromptTemplate.hasTemplates(prompt) || PromptTemplate.hasTemplates(negativePrompt) else { return expanded }
        var stream = SplitMix64(seed: seed ?? 0)
        expanded.prompt = try PromptTemplate.expand(prompt, stream: &stream, wildcards: wildcards)
        expanded.negativePrompt = try PromptTemplate.expand(negativePrompt, stream: &stream, wildcards: wildcards)
        return expanded
    }
}
