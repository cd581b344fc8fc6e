using SharedEntities;

namespace Broken;

// SE0001: a [SharedEntity] class must be partial, or the generator cannot implement its shared properties.
[SharedEntity]
public class Invoice
{
    public int Id { get; set; }

    public long Version { get; set; }

    public decimal Amount { get; set; }
}
